app_name = "rollouts"
urlpatterns: list = []
