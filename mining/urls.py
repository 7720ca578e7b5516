app_name = "mining"
urlpatterns: list = []
