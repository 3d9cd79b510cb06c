from django.apps import AppConfig


class StudyPlatformConfig(AppConfig):
    name = "studyplatform"
    verbose_name = "Study platform"
