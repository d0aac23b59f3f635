from django.urls import path

from smarttickets.booking import views

app_name = "booking"
urlpatterns = [
    path("performances/<int:performance_id>/", views.performance_page, name="performance"),
    path("performances/<int:performance_id>/hold", views.hold_create, name="hold_create"),
    path("holds/<int:hold_id>/", views.hold_page, name="hold"),
    path("holds/<int:hold_id>/release", views.hold_release, name="hold_release"),
    path("orders/", views.my_orders, name="my_orders"),
    path("orders/<str:code>/", views.order_page, name="order"),
    path("organizer/orders/", views.organizer_orders, name="organizer_orders"),
    path("organizer/orders/<str:code>/", views.organizer_order, name="organizer_order"),
    path("organizer/performances/<int:performance_id>/sales/", views.organizer_sales,
         name="organizer_sales"),
]
