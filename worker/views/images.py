"""Images behind the researcher's login: data set thumbnails, a run's colourised test
images as stored, and their ground truth cut as the models saw it."""

from django.core.files.storage import default_storage
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET
from PIL import Image

from colourmodels.data.images import load_rgb, resize_square
from studyplatform.access import require, researcher_required
from worker.imaging import content_type_of, image_response, png_bytes, stored_thumbnail
from worker.models import ColourisedImage, DatasetImage

THUMBNAIL_SIDE = 160


@researcher_required
@require_GET
def dataset_image_thumbnail(request, pk: int):
    image = get_object_or_404(DatasetImage.objects.select_related("dataset"), pk=pk)
    require(request.user, image.dataset, found=image)
    return image_response(stored_thumbnail(image.file, THUMBNAIL_SIDE), "image/jpeg")


@researcher_required
@require_GET
def run_output_image(request, pk: int):
    """A colourised test image, as the run stored it (a trained run's PNG, or an uploaded
    run's JPEG or PNG), with the content type of what is stored."""
    output = get_object_or_404(ColourisedImage.objects.select_related("run"), pk=pk)
    require(request.user, output.run, found=output)
    try:
        with default_storage.open(output.file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise Http404("the image is no longer in storage") from None
    return image_response(data, content_type_of(data))


@researcher_required
@require_GET
def run_output_truth(request, pk: int):
    """The ground truth of a colourised test image at the output's size: shorter side
    scaled, centred square kept (as the training data were prepared)."""
    output = get_object_or_404(ColourisedImage.objects.select_related("source", "run"), pk=pk)
    require(request.user, output.run, found=output)
    try:
        with default_storage.open(output.file, "rb") as f, Image.open(f) as colourised:
            side = min(colourised.size)
        with default_storage.open(output.source.file, "rb") as f:
            truth = resize_square(load_rgb(f, name=output.source.original_name), side)
    except FileNotFoundError:
        raise Http404("the image is no longer in storage") from None
    return image_response(png_bytes(truth), "image/png")
