from django.urls import path

from worker import views

urlpatterns = [
    path("datasets/", views.datasets, name="datasets"),
    path("datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/manifest.csv", views.dataset_manifest, name="dataset_manifest"),
    path(
        "datasets/images/<int:pk>/thumbnail.jpg",
        views.dataset_image_thumbnail,
        name="dataset_image_thumbnail",
    ),
    path("datasets/imports/<int:pk>/", views.import_job, name="import_job"),
    path(
        "datasets/imports/<int:pk>/status.json", views.import_job_status, name="import_job_status"
    ),
]
