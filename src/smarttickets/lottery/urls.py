"""Lottery URLs under /lottery/ (namespace ``lottery``)."""

from django.urls import path

from smarttickets.lottery import views

app_name = "lottery"
urlpatterns = [
    path("performances/<int:performance_id>/", views.performance_page, name="performance"),
    path("performances/<int:performance_id>/enter", views.enter_view, name="enter"),
    path("entries/", views.my_entries, name="my_entries"),
    path("entries/<str:entry_id>/", views.entry_page, name="entry"),
    path("entries/<str:entry_id>/withdraw", views.withdraw_view, name="withdraw"),
    path("entries/<str:entry_id>/check", views.receipt_check, name="receipt_check"),
    path("verify_draw.py", views.verifier_py, name="verifier"),
    path("signing-key.pem", views.public_key, name="public_key"),
    path("organizer/", views.organizer_index, name="organizer_index"),
    path("organizer/performances/<int:performance_id>/", views.organizer_performance,
         name="organizer_performance"),
    path("organizer/lotteries/<int:lottery_id>/", views.organizer_lottery,
         name="organizer_lottery"),
    path("organizer/lotteries/<int:lottery_id>/review", views.organizer_review,
         name="organizer_review"),
    path("organizer/lotteries/<int:lottery_id>/<slug:action>", views.organizer_action,
         name="organizer_action"),
    path("<str:public_id>/", views.draw_page, name="draw"),
    path("<str:public_id>/commitment.json", views.commitment_json, name="commitment_json"),
    path("<str:public_id>/signature.json", views.signature_json, name="signature_json"),
    path("<str:public_id>/entries.json", views.entries_json, name="entries_json"),
    path("<str:public_id>/result.json", views.result_json, name="result_json"),
]
