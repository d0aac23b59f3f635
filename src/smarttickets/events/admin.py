"""Django admin for organizers, venues, seat maps, events, performances and price zones."""

from django.contrib import admin

from smarttickets.events.models import (
    Event,
    GAArea,
    Membership,
    Organizer,
    Performance,
    PriceZone,
    Seat,
    Section,
    Venue,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organizer)
class OrganizerAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "contact_email", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organizer", *Membership.PERMISSIONS)
    list_filter = ("organizer", *Membership.PERMISSIONS)
    search_fields = ("user__email", "organizer__name")
    raw_id_fields = ["user"]
    autocomplete_fields = ["organizer"]


class SectionInline(admin.TabularInline):
    model = Section
    extra = 0
    fields = ("code", "name", "sort_order")
    show_change_link = True


class GAAreaInline(admin.TabularInline):
    model = GAArea
    extra = 0


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ("name", "organizer", "city", "seatmap_updated_at")
    list_filter = ("organizer", "city")
    search_fields = ("name",)
    inlines = [SectionInline, GAAreaInline]


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "venue", "sort_order")
    list_filter = ("venue",)
    search_fields = ("code", "name", "venue__name")


@admin.register(Seat)
class SeatAdmin(admin.ModelAdmin):
    list_display = ("__str__", "section", "row", "number", "accessible")
    list_filter = ("accessible", "section__venue")
    search_fields = ("section__code", "row", "number")
    list_select_related = ("section__venue",)


@admin.register(GAArea)
class GAAreaAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "venue", "capacity")
    list_filter = ("venue",)


class PerformanceInline(admin.StackedInline):
    model = Performance
    extra = 0


class PriceZoneInline(admin.TabularInline):
    model = PriceZone
    extra = 0
    filter_horizontal = ("sections", "ga_areas")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("title", "artist", "organizer", "venue", "state", "published_at")
    list_filter = ("state", "organizer", "venue")
    search_fields = ("title", "artist", "slug")
    readonly_fields = ("state", "published_at", "created_at", "updated_at")
    inlines = [PerformanceInline, PriceZoneInline]


@admin.register(Performance)
class PerformanceAdmin(admin.ModelAdmin):
    list_display = ("event", "starts_at", "sale_mode", "cancelled")
    list_filter = ("sale_mode", "cancelled")
    search_fields = ("event__title",)
    date_hierarchy = "starts_at"


@admin.register(PriceZone)
class PriceZoneAdmin(admin.ModelAdmin):
    list_display = ("name", "event", "price", "currency", "color")
    list_filter = ("event",)
    filter_horizontal = ("sections", "ga_areas")
