from django.urls import path

from worker.views import datasets, images, manage, runs, uploads

urlpatterns = [
    path("datasets/", datasets.index, name="datasets"),
    path("datasets/upload/", datasets.dataset_upload, name="dataset_upload"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/sharing/", datasets.dataset_sharing, name="dataset_sharing"),
    path("datasets/<int:pk>/archive/", manage.dataset_archive, name="dataset_archive"),
    path("datasets/<int:pk>/delete/", manage.dataset_delete_view, name="dataset_delete"),
    path("datasets/<int:pk>/manifest.csv", datasets.dataset_manifest, name="dataset_manifest"),
    path("datasets/<int:pk>/test-split.zip", datasets.dataset_test_zip, name="dataset_test_zip"),
    path(
        "datasets/images/<int:pk>/thumbnail.jpg",
        images.dataset_image_thumbnail,
        name="dataset_image_thumbnail",
    ),
    path("datasets/imports/<int:pk>/", datasets.import_job, name="import_job"),
    path(
        "datasets/imports/<int:pk>/status.json",
        datasets.import_job_status,
        name="import_job_status",
    ),
    path(
        "datasets/imports/<int:pk>/delete/",
        manage.import_job_delete_view,
        name="import_job_delete",
    ),
    path("runs/", runs.index, name="runs"),
    path("runs/status.json", runs.runs_status, name="runs_status"),
    path("runs/new/", runs.run_launch, name="run_launch"),
    path("runs/upload/", uploads.run_upload, name="run_upload"),
    path("runs/compare/", runs.runs_compare_page, name="runs_compare"),
    path("runs/<int:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<int:pk>/status.json", runs.run_status, name="run_status"),
    path(
        "runs/<int:pk>/figures/<int:submodel>/<slug:name>.<slug:fmt>",
        runs.run_figure,
        name="run_figure",
    ),
    path("runs/<int:pk>/cancel/", runs.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/sharing/", runs.run_sharing, name="run_sharing"),
    path("runs/<int:pk>/colourised.zip", runs.run_outputs_download, name="run_outputs_zip"),
    path("runs/<int:pk>/archive/", manage.run_archive, name="run_archive"),
    path("runs/<int:pk>/delete/", manage.run_delete_view, name="run_delete"),
    path("runs/outputs/<int:pk>.png", images.run_output_image, name="run_output_image"),
    path("runs/outputs/<int:pk>/truth.png", images.run_output_truth, name="run_output_truth"),
]
