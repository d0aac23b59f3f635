"""Risk pages under /risk/ (namespace ``risk``)."""

from django.urls import path

from smarttickets.risk import views

app_name = "risk"
urlpatterns = [
    path("verify/", views.stepup, name="stepup"),
    path("status/", views.status, name="status"),
    path("cases/<int:case_id>/", views.case, name="case"),
    path("review/", views.review_queue, name="review_queue"),
    path("review/<int:case_id>/", views.review_case, name="review_case"),
    path("review/<int:case_id>/decide", views.review_verdict, name="review_verdict"),
]
