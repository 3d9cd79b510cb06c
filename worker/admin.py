from django.contrib import admin

from worker.models import Dataset, DatasetImage, ImportJob


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "created_at", "created_by")
    list_filter = ("source",)
    search_fields = ("name",)
    readonly_fields = ("uid", "counts", "summary", "categories", "created_at")


@admin.register(DatasetImage)
class DatasetImageAdmin(admin.ModelAdmin):
    list_display = ("original_name", "dataset", "category", "split", "width", "height")
    list_filter = ("split", "dataset")
    search_fields = ("original_name",)
    readonly_fields = ("dataset", "file", "original_name", "width", "height")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "done", "total", "created_at")
    list_filter = ("status",)
    readonly_fields = ("upload", "original_filename", "done", "total", "error", "dataset")
