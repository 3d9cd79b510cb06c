"""URLs of a study's analysis (researchers only): dashboard, live data, per-image view,
thumbnails and downloads."""

from django.urls import path

from survey.views import analysis as views
from survey.views import display_report, preference, rating

urlpatterns = [
    path("studies/<int:pk>/analysis/", views.analysis_page, name="study_analysis"),
    path("studies/<int:pk>/analysis.json", views.analysis_json, name="study_analysis_json"),
    path("studies/<int:pk>/images/", views.images_page, name="study_images"),
    path(
        "studies/<int:pk>/display/",
        display_report.display_report_page,
        name="study_display_report",
    ),
    path(
        "studies/<int:pk>/export/display.csv",
        display_report.export_display_csv,
        name="export_display_csv",
    ),
    path(
        "studies/<int:pk>/export/display.json",
        display_report.export_display_json,
        name="export_display_json",
    ),
    path(
        "studies/<int:pk>/export/ratings.csv", rating.export_ratings_csv, name="export_ratings_csv"
    ),
    path(
        "studies/<int:pk>/export/mos.csv", rating.export_mos, {"fmt": "csv"}, name="export_mos_csv"
    ),
    path(
        "studies/<int:pk>/export/mos.json",
        rating.export_mos,
        {"fmt": "json"},
        name="export_mos_json",
    ),
    path("studies/<int:pk>/export/tables.csv", views.export_tables_csv, name="export_tables_csv"),
    path(
        "studies/<int:pk>/export/tables.json",
        views.export_tables_json,
        name="export_tables_json",
    ),
    path("studies/<int:pk>/export/tables.tex", views.export_tables_tex, name="export_tables_tex"),
    path("studies/<int:pk>/export/images.csv", views.export_images_csv, name="export_images_csv"),
    path(
        "studies/<int:pk>/export/judgements.csv",
        views.export_judgements_csv,
        name="export_judgements_csv",
    ),
    path(
        "studies/<int:pk>/export/figures/<slug:name>.<slug:fmt>",
        views.export_figure,
        name="study_figure",
    ),
    path("studies/<int:pk>/export/runs.tex", views.export_runs_tex, name="export_runs_tex"),
    path(
        "studies/<int:pk>/export/preferences.csv",
        preference.export_preference_judgements_csv,
        name="export_preference_judgements_csv",
    ),
    path(
        "studies/<int:pk>/export/bradley-terry.json",
        preference.export_preference_scores_json,
        name="export_preference_scores_json",
    ),
    path(
        "studies/<int:pk>/export/bradley-terry.tex",
        preference.export_preference_scores_tex,
        name="export_preference_scores_tex",
    ),
    path(
        "studies/<int:pk>/export/bradley-terry.csv",
        preference.export_preference_scores_csv,
        name="export_preference_scores_csv",
    ),
    path(
        "studies/stimuli/<int:pk>/analysis-thumb.jpg",
        views.stimulus_thumbnail,
        name="stimulus_analysis_thumbnail",
    ),
]
