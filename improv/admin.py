from django.contrib import admin

# AudioSession's admin (watch and end live sessions) belongs to the audio app.
from improv.models import AudienceArchetype, Game, Principle, Scene, Turn


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    list_display = ("name", "difficulty", "energy", "duration_minutes", "is_active", "position")
    list_editable = ("is_active", "position")
    list_filter = ("difficulty", "energy", "is_active")
    search_fields = ("name", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Principle)
class PrincipleAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    list_editable = ("position",)
    search_fields = ("name", "summary")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(AudienceArchetype)
class AudienceArchetypeAdmin(admin.ModelAdmin):
    list_display = ("name", "suggestion_style", "reacts_to")
    search_fields = ("name", "description")
    prepopulated_fields = {"slug": ("name",)}


class TurnInline(admin.TabularInline):
    model = Turn
    fields = ("index", "speaker", "mode", "text", "meta", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("index",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scene)
class SceneAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "status",
        "game_slug",
        "mode",
        "turn_count",
        "created_at",
        "last_activity_at",
    )
    list_filter = ("status", "mode", "game_slug")
    search_fields = ("id", "user__email", "suggestion")
    date_hierarchy = "created_at"
    inlines = [TurnInline]
    list_select_related = ("user",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Scenes are a record of play: readable here, changed only by the app.
        return False
