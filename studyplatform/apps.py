from django.apps import AppConfig


class StudyPlatformConfig(AppConfig):
    name = "studyplatform"
    verbose_name = "Study platform"

    def ready(self):
        from django.conf import settings

        from studyplatform.translations import compile_stale_catalogues

        compile_stale_catalogues(settings.LOCALE_PATHS)
