from django.contrib import admin

from survey.models import Condition, Participant, Stimulus, Study, Trial, Withdrawal


class ConditionInline(admin.TabularInline):
    model = Condition
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "design", "images_per_participant", "created_at")
    list_filter = ("status", "design")
    search_fields = ("name",)
    readonly_fields = ("slug", "created_at", "opened_at", "closed_at")
    inlines = [ConditionInline]


@admin.register(Stimulus)
class StimulusAdmin(admin.ModelAdmin):
    list_display = ("pk", "study", "condition", "scene", "is_real", "exposures")
    list_filter = ("study", "is_real")
    readonly_fields = ("study", "condition", "scene", "is_real", "file", "width", "height")


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("public_id", "study", "condition", "is_pilot", "started_at", "completed_at")
    list_filter = ("study", "is_pilot")
    search_fields = ("public_id", "prolific_pid")
    readonly_fields = [f.name for f in Participant._meta.fields]


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    """Judgements are data: never edited by hand."""

    list_display = ("participant", "position", "stimulus", "answer", "rt_ms", "answered_at")
    list_filter = ("answer",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = ("participant_public_id", "study", "withdrawn_at", "withdrawn_by")
    readonly_fields = [f.name for f in Withdrawal._meta.fields]
