"""Organizer dashboard URLs, mounted at /organizer/."""

from django.urls import path

from smarttickets.events import organizer_views as v

app_name = "organizer"
urlpatterns = [
    path("", v.dashboard, name="dashboard"),
    path("events/new/", v.event_create, name="event_create"),
    path("events/<int:event_id>/", v.event_summary, name="event"),
    path("events/<int:event_id>/edit/", v.event_edit, name="event_edit"),
    path("events/<int:event_id>/publish/", v.event_publish, name="event_publish"),
    path("events/<int:event_id>/cancel/", v.event_cancel, name="event_cancel"),
    path("events/<int:event_id>/performances/new/", v.performance_create,
         name="performance_create"),
    path("performances/<int:performance_id>/edit/", v.performance_edit, name="performance_edit"),
    path("events/<int:event_id>/zones/new/", v.zone_create, name="zone_create"),
    path("zones/<int:zone_id>/edit/", v.zone_edit, name="zone_edit"),
    path("zones/<int:zone_id>/delete/", v.zone_delete, name="zone_delete"),
    path("venues/", v.venue_list, name="venues"),
    path("venues/new/", v.venue_create, name="venue_create"),
    path("venues/<int:venue_id>/", v.venue_detail, name="venue"),
    path("venues/<int:venue_id>/seatmap.csv", v.venue_export, name="venue_export"),
]
