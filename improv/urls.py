from django.urls import path

from improv import views

urlpatterns = [path("", views.home, name="home")]
