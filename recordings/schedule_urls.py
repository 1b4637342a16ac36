"""URLs of the recording schedules: the page and the REST API (recordings/schedule_views.py)."""

from django.urls import path

from . import pages, schedule_views

urlpatterns = [
    path("recordings/schedules/", pages.schedules_page, name="recording-schedules-page"),
    path("api/cameras/<slug:camera>/recording-schedules/",
         schedule_views.RecordingScheduleList.as_view(), name="recording-schedule-list"),
    path("api/cameras/<slug:camera>/recording-schedules/<int:pk>/",
         schedule_views.RecordingScheduleDetail.as_view(), name="recording-schedule-detail"),
]
