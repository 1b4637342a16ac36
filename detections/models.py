"""Detection history: samples of the detector's results, for counts and charts."""

from django.db import models


class DetectionSample(models.Model):
    """One detected object in one sampled detector result."""

    camera = models.SlugField(max_length=64)
    time = models.DateTimeField(help_text="wall-clock time of the frame")
    frame_number = models.BigIntegerField()
    class_name = models.CharField(max_length=32)
    confidence = models.FloatField()
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.IntegerField()
    h = models.IntegerField()

    class Meta:
        ordering = ["time", "id"]
        indexes = [models.Index(fields=["camera", "time"], name="detection_camera_time")]

    def __str__(self) -> str:
        return f"{self.camera} {self.time:%Y-%m-%d %H:%M:%S} {self.class_name}"
