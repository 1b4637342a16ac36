"""The events app's pages and API (included by petcam_site/urls.py)."""

from django.urls import path

from . import pages, push_views, views

urlpatterns = [
    path("events/", pages.events_page, name="events"),
    path("events/rules/", pages.rules_page, name="event-rules-page"),
    path("events/rules/new/", pages.rule_edit_page, name="event-rule-new"),
    path("events/rules/<int:pk>/", pages.rule_edit_page, name="event-rule-edit"),
    path("api/events/", views.EventList.as_view(), name="event-list"),
    path("api/events/<int:pk>/", views.EventDetail.as_view(), name="event-detail"),
    path("api/events/<int:pk>/snapshot/", views.EventSnapshot.as_view(), name="event-snapshot"),
    path("api/event-rules/", views.EventRuleList.as_view(), name="event-rule-list"),
    path("api/event-rules/<int:pk>/", views.EventRuleDetail.as_view(), name="event-rule-detail"),
    path("api/push/vapid-public-key/", push_views.VapidPublicKey.as_view(),
         name="push-vapid-public-key"),
    path("api/push/subscriptions/", push_views.SubscriptionList.as_view(),
         name="push-subscription-list"),
    path("api/push/subscriptions/<int:pk>/", push_views.SubscriptionDetail.as_view(),
         name="push-subscription-detail"),
    path("api/cameras/<slug:camera>/still/", views.CameraStill.as_view(), name="camera-still"),
]
