"""Tickets get an explicit holder (the buyer until a transfer), filled in for existing tickets."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def holders_are_buyers(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    Order = apps.get_model("booking", "Order")
    Ticket.objects.filter(holder_user__isnull=True).update(
        holder_user=Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("buyer_id")[:1]))


class Migration(migrations.Migration):

    dependencies = [
        ("booking", "0001_initial"),
        ("tickets", "0002_wallet_scanning"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="holder_user",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="held_tickets", to=settings.AUTH_USER_MODEL,
                                    verbose_name="holder"),
        ),
        migrations.RunPython(holders_are_buyers, migrations.RunPython.noop),
    ]
