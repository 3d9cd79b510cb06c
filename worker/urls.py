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
    path("runs/", views.runs, name="runs"),
    path("runs/status.json", views.runs_status, name="runs_status"),
    path("runs/new/", views.run_launch, name="run_launch"),
    path("runs/upload/", views.run_upload, name="run_upload"),
    path("runs/compare/", views.runs_compare_page, name="runs_compare"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/status.json", views.run_status, name="run_status"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/outputs/<int:pk>.png", views.run_output_image, name="run_output_image"),
    path("runs/outputs/<int:pk>/truth.png", views.run_output_truth, name="run_output_truth"),
]
