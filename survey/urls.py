from django.urls import path

from survey.views import (
    colour_screen,
    manage,
    participant,
    participants,
    power,
    reproduction,
    study,
)

urlpatterns = [
    # Participants (no login; unguessable ids)
    path("s/<str:slug>/", participant.study_landing, name="study_landing"),
    path("p/<str:public_id>/", participant.participant_page, name="participant_page"),
    path("p/<str:public_id>/answer", participant.participant_answer, name="participant_answer"),
    path(
        "p/<str:public_id>/image/<int:position>",
        participant.participant_image,
        name="participant_image",
    ),
    path("p/<str:public_id>/screen/", colour_screen.participant_screen, name="participant_screen"),
    path(
        "p/<str:public_id>/screen/<int:position>.png",
        colour_screen.participant_screen_plate,
        name="participant_screen_plate",
    ),
    path(
        "p/<str:public_id>/image/<int:position>/<str:side>",
        participant.participant_image,
        name="participant_pair_image",
    ),
    path(
        "p/<str:public_id>/mask/<int:position>/<int:number>",
        participant.participant_mask,
        name="participant_mask",
    ),
    path("p/<str:public_id>/done/", participant.participant_done, name="participant_done"),
    path("p/<str:public_id>/stop", participant.participant_stop, name="participant_stop"),
    # Researchers
    path("studies/", study.studies, name="studies"),
    path("studies/new/", study.study_new, name="study_new"),
    path("studies/plan/", power.plan_page, name="study_plan"),
    path("studies/plan/power-curve.<slug:fmt>", power.plan_figure, name="study_plan_figure"),
    path("studies/<int:pk>/", study.study_detail, name="study_detail"),
    path("studies/<int:pk>/edit/", study.study_edit, name="study_edit"),
    path("studies/<int:pk>/monitor.json", study.study_monitor_json, name="study_monitor"),
    path("studies/<int:pk>/open/", study.study_open_view, name="study_open"),
    path("studies/<int:pk>/prepare/", study.study_prepare_view, name="study_prepare"),
    path("studies/<int:pk>/close/", study.study_close_view, name="study_close"),
    path("studies/<int:pk>/pilot/", study.study_pilot_view, name="study_pilot"),
    path(
        "studies/<int:pk>/pilot/remove/",
        study.study_pilot_remove_view,
        name="study_pilot_remove",
    ),
    path("studies/<int:pk>/sharing/", study.study_sharing, name="study_sharing"),
    path("studies/<int:pk>/withdraw/", study.study_withdraw_view, name="study_withdraw"),
    path("studies/<int:pk>/stimuli/", study.study_stimuli_page, name="study_stimuli"),
    path("studies/<int:pk>/archive/", manage.study_archive, name="study_archive"),
    path("studies/<int:pk>/delete/", manage.study_delete_view, name="study_delete"),
    path("studies/<int:pk>/duplicate/", manage.study_duplicate_view, name="study_duplicate"),
    path("studies/<int:pk>/stimuli.zip", study.study_stimuli_zip, name="study_stimuli_zip"),
    path("studies/<int:pk>/preview/", study.study_preview, name="study_preview"),
    path(
        "studies/<int:pk>/preview/screen/",
        colour_screen.study_preview_screen,
        name="study_preview_screen",
    ),
    path(
        "studies/<int:pk>/preview/screen/<int:seed>/<int:position>.png",
        colour_screen.study_preview_screen_plate,
        name="study_preview_screen_plate",
    ),
    path(
        "studies/<int:pk>/participants/",
        participants.participants_page,
        name="study_participants",
    ),
    path(
        "studies/<int:pk>/participants/<int:number>/",
        participants.participant_trials_page,
        name="study_participant",
    ),
    path(
        "studies/<int:pk>/participants.csv",
        participants.participants_csv,
        name="study_participants_csv",
    ),
    path("studies/<int:pk>/approvals.csv", participants.approvals_csv, name="study_approvals"),
    path("studies/<int:pk>/approve_ids.txt", participants.approve_ids, name="study_approve_ids"),
    path("studies/<int:pk>/bonuses.csv", participants.bonuses_csv, name="study_bonuses"),
    path(
        "studies/<int:pk>/preregistration.json",
        reproduction.preregistration_json,
        name="study_preregistration_json",
    ),
    path(
        "studies/<int:pk>/preregistration.md",
        reproduction.preregistration_md,
        name="study_preregistration_md",
    ),
    path("studies/<int:pk>/bundle.zip", reproduction.bundle_zip, name="study_bundle"),
    path("studies/stimuli/<int:pk>.jpg", study.study_stimulus_image, name="study_stimulus_image"),
]
