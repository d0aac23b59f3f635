app_name = "organizer"
urlpatterns: list = []
