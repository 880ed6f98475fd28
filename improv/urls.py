from django.urls import path

from improv import views

urlpatterns = [
    path("", views.home, name="home"),
    path("scenes/", views.scene_history, name="scene-history"),
    path("scenes/new/", views.scene_new, name="scene-new"),
    path("scenes/<str:scene_id>/", views.scene_stage, name="scene-stage"),
    path("scenes/<str:scene_id>/review/", views.scene_review, name="scene-review"),
    path("scenes/<str:scene_id>/transcript.<str:fmt>", views.scene_transcript, name="scene-transcript"),
    path("scenes/<str:scene_id>/<str:action>/", views.scene_action, name="scene-action"),
]
