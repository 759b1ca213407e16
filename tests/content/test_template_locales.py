"""Templates in several locales: the fallback chain (pt-BR, then pt, then the template's own), refused unknown
locales, the preview and the test send in a chosen locale, and a fan-out where each recipient gets their
locale's text (in-app, through the real pipeline)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError

from apps.audience.models import Recipient
from apps.content.models import Template, TemplateLocale, locale_chain
from apps.delivery.service import notify
from apps.inbox.models import InboxMessage
from apps.preferences.defaults import ensure_default_categories
from tests.delivery.test_pipeline import completed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kickoff() -> Template:
    template = Template.objects.create(name="Kick-off", push_title="Kick-off: {{ team }}", push_body="Starting now",
                                       sms_text="KO {{ team }}", sample_context={"team": "Arsenal"})
    TemplateLocale.objects.create(template=template, locale="es", push_title="Comienza: {{ team }}")
    TemplateLocale.objects.create(template=template, locale="pt", push_title="Começa: {{ team }}",
                                  push_body="Agora")
    TemplateLocale.objects.create(template=template, locale="pt-BR", push_title="Começa já: {{ team }}")
    return template


def test_the_fallback_chain(kickoff):
    assert locale_chain("pt-BR") == ["pt-br", "pt"] and locale_chain("") == []
    shown = {locale: (kickoff.localized(locale).text("push_title"), kickoff.localized(locale).text("push_body"))
             for locale in ("pt-BR", "pt_br", "pt-PT", "pt", "es-MX", "es", "en", "fr", "")}
    assert shown == {
        "pt-BR": ("Começa já: {{ team }}", "Starting now"),  # an empty field takes the template's own
        "pt_br": ("Começa já: {{ team }}", "Starting now"),
        "pt-PT": ("Começa: {{ team }}", "Agora"), "pt": ("Começa: {{ team }}", "Agora"),
        "es-MX": ("Comienza: {{ team }}", "Starting now"), "es": ("Comienza: {{ team }}", "Starting now"),
        "en": ("Kick-off: {{ team }}", "Starting now"), "fr": ("Kick-off: {{ team }}", "Starting now"),
        "": ("Kick-off: {{ team }}", "Starting now")}


def test_an_unknown_locale_or_a_broken_text_is_refused_at_the_field(kickoff):
    with pytest.raises(ValidationError) as refused:
        TemplateLocale(template=kickoff, locale="xx-yy", push_title="Hi").full_clean()
    assert "locale" in refused.value.message_dict and "not a known locale" in refused.value.message_dict["locale"][0]
    with pytest.raises(ValidationError) as refused:
        TemplateLocale(template=kickoff, locale="de", push_title="Los: {{ mannschaft }}").full_clean()
    assert "mannschaft" in refused.value.message_dict["push_title"][0]


def test_the_admin_previews_a_locale_and_refuses_an_unknown_one(client, kickoff):
    marketer = User.objects.create_user("locale-marketer", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketer"))
    client.force_login(marketer)
    shown = client.post("/admin/content/template/render/", {"template": kickoff.pk, "locale": "pt-BR"}).json()
    assert shown["fields"]["push_title"] == "Começa já: Arsenal" and shown["fields"]["push_body"] == "Starting now"
    assert "locale pt-BR" in shown["note"]
    form = {"name": "Kick-off", "push_title": "Kick-off", "sample_context": "{}",
            "locales-TOTAL_FORMS": "1", "locales-INITIAL_FORMS": "0", "locales-MIN_NUM_FORMS": "0",
            "locales-MAX_NUM_FORMS": "1000", "locales-0-locale": "klingon", "locales-0-push_title": "Qapla'"}
    answer = client.post(f"/admin/content/template/{kickoff.pk}/change/", form)
    assert answer.status_code == 200 and "not a known locale" in answer.content.decode()
    assert not kickoff.locales.filter(locale="klingon").exists()


def test_each_recipient_gets_their_locales_text_through_the_pipeline(stack, kickoff):
    ensure_default_categories()
    locales = {"en": "Kick-off: Arsenal", "es": "Comienza: Arsenal", "es-MX": "Comienza: Arsenal",
               "pt": "Começa: Arsenal", "pt-BR": "Começa já: Arsenal", "fr": "Kick-off: Arsenal"}
    fans = {Recipient.objects.create(external_id=f"locale-{locale}-{n}", locale=locale).pk: title
            for locale, title in locales.items() for n in range(3)}
    notification = notify(category="goal-alerts", audience={"recipients": list(fans)}, channels=["in_app"],
                          context={"team": "Arsenal"}, template_id=kickoff.pk)
    assert completed(notification.pk).sent == len(fans)
    got = dict(InboxMessage.objects.filter(recipient_id__in=fans).values_list("recipient_id", "title"))
    assert got == fans
