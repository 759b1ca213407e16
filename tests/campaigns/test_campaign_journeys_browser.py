"""A Marketer and a Sender click through their screens in headless Chromium, on the production-style
web server (tests/web_server.py: gunicorn + uvicorn, DEBUG off, static files by whitenoise), against
the real pipeline. Screenshots land in test-output/."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from apps.audience.models import Topic
from apps.campaigns.models import Campaign, CampaignStatus
from apps.content.models import Template
from apps.preferences.models import Category
from tests.campaigns.test_campaign_page_browser import OUTPUT
from tests.web_server import web_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def site(stack, tmp_path_factory) -> str:
    # A test send answers once every channel has an outcome: on a loaded CI host that can take over the 8 s default.
    with web_server(tmp_path_factory.mktemp("static"), NOTIFY_TEST_SEND_WAIT_SECONDS="30") as url:
        yield url


def staff(group: str) -> User:
    name = f"{group.lower()}-{uuid.uuid4().hex[:4]}"
    user = User.objects.create_user(name, f"{name}@club.example", "a-long-pass-phrase", is_staff=True,
                                    first_name="Maria", last_name=group)
    user.groups.add(Group.objects.get(name=group))
    return user


def wait(driver, condition, timeout: float = 20, message: str = ""):  # noqa: ANN001, ANN201
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # an element read just as the page navigates goes stale: read it again on the next poll
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(), message=message)


def by_css(driver, selector: str):  # noqa: ANN001, ANN201
    return driver.find_element("css selector", selector)


def text_of(driver, selector: str) -> str:  # noqa: ANN001
    found = driver.find_elements("css selector", selector)
    return found[0].text if found else ""


def log_in(driver, site: str, user: User) -> None:  # noqa: ANN001
    driver.delete_all_cookies()
    driver.get(f"{site}/admin/login/")
    by_css(driver, "#id_username").send_keys(user.username)
    by_css(driver, "#id_password").send_keys("a-long-pass-phrase")
    by_css(driver, "input[type=submit]").click()
    wait(driver, lambda: "/admin/login/" not in driver.current_url, message="the login")
    assert driver.execute_script("return getComputedStyle(document.body).fontFamily")  # the admin's CSS loaded


def type_into(driver, selector: str, text: str) -> None:  # noqa: ANN001
    field = by_css(driver, selector)
    field.clear()
    field.send_keys(text)


def pick(driver, field: str, term: str, shown: str) -> None:  # noqa: ANN001
    """Choose in an autocomplete (select2) field as a user does: open it, type, click the result."""
    by_css(driver, f"#id_{field} + .select2 .select2-selection").click()
    box = wait(driver, lambda: driver.find_elements("css selector", ".select2-container--open .select2-search__field"))
    box[0].send_keys(term)

    def choose() -> bool:
        # select2 redraws the list when the search answers: an option found in the list before goes stale, and
        # the wait finds it again in the new one
        option = next((o for o in driver.find_elements("css selector", ".select2-results__option")
                       if shown in o.text), None)
        if option is not None:
            option.click()
        return option is not None

    wait(driver, choose, message=f"{shown} offered in {field}")
    wait(driver, lambda: shown in text_of(driver, f"#id_{field} + .select2 .select2-selection__rendered"),
         message=f"{shown} chosen in {field}")


def shot(driver, name: str) -> None:  # noqa: ANN001
    OUTPUT.mkdir(exist_ok=True)
    driver.save_screenshot(str(OUTPUT / f"journey-{name}.png"))


def test_marketer_composes_previews_and_tests_and_a_sender_schedules(browser, site, fans):  # noqa: F811
    marketer = staff("Marketer")
    log_in(browser, site, marketer)
    # a template, previewed beside the form without saving
    browser.get(f"{site}/admin/content/template/add/")
    type_into(browser, "#id_name", "Derby offer")
    type_into(browser, "#id_push_title", "{{ discount }}% off, {{ recipient.name }}")
    type_into(browser, "#id_push_body", "{% if recipient.locale == 'fr' %}Bonjour{% else %}Hello{% endif %}")
    type_into(browser, "#id_email_subject", "Derby offer")
    type_into(browser, "#id_email_text", "{{ discount }}% off today")
    type_into(browser, "#id_sample_context", '{"discount": 10}')
    wait(browser, lambda: text_of(browser, '[data-field="push_title"]') == "10% off, Ada Lovelace",
         message="the live preview")
    type_into(browser, "#preview-locale", "fr")
    by_css(browser, "#preview-refresh").click()  # a button of its own: it does not submit the form
    wait(browser, lambda: text_of(browser, '[data-field="push_body"]') == "Bonjour", message="the locale preview")
    assert "Unsubscribe: https://" in text_of(browser, '[data-field="email_text"]')
    assert browser.current_url.endswith("/template/add/") and not Template.objects.exists()
    shot(browser, "template-preview")
    by_css(browser, "input[name=_save]").click()
    wait(browser, lambda: Template.objects.filter(name="Derby offer").exists(), message="the template saved")

    # a campaign: topic picked through the autocomplete, the estimate live before saving
    browser.get(f"{site}/admin/campaigns/campaign/add/")
    type_into(browser, "#id_name", "Derby day offer")
    by_css(browser, f"#id_category option[value='{Category.objects.get(slug='goal-alerts').pk}']").click()
    pick(browser, "template", "Derby", "Derby offer")
    for channel in ("push", "in_app"):
        by_css(browser, f"input[name=channels][value={channel}]").click()
    type_into(browser, "#id_context", "{}")
    pick(browser, "topic", "test", "Test-Fans")
    wait(browser, lambda: text_of(browser, "#campaign-estimate") == "3,000 users", message="the live estimate")
    wait(browser, lambda: "cannot render" in text_of(browser, '[data-field="push_title"]'),
         message="the preview to show the missing variable")
    by_css(browser, "input[name=_save]").click()  # refused: the context lacks {{ discount }}
    error = wait(browser, lambda: text_of(browser, ".field-context .errorlist"), message="the context error")
    assert 'uses {{ discount }}, which this context does not give: add "discount"' in error
    shot(browser, "campaign-context-refused")
    # the page came back with the form as typed; the picks are kept, the file inputs are not
    type_into(browser, "#id_context", '{"discount": 20}')
    wait(browser, lambda: text_of(browser, '[data-field="push_title"]') == "20% off, Ada Lovelace",
         message="the campaign preview")
    by_css(browser, "#id_schedule_kind option[value=at]").click()
    when = timezone.localtime() + timedelta(hours=2)
    type_into(browser, "#id_send_at_0", when.strftime("%Y-%m-%d"))
    type_into(browser, "#id_send_at_1", when.strftime("%H:%M:%S"))
    by_css(browser, "input[name=_continue]").click()
    campaign = wait(browser, lambda: Campaign.objects.filter(name="Derby day offer").first(), message="the save")
    wait(browser, lambda: "/change/" in browser.current_url)

    # send a test to me: the real outcome, per channel
    by_css(browser, "#send-test-to-me").click()
    # the saved page's own message ("added successfully") is there until the test's answer replaces it
    message = wait(browser, lambda: "test to you" in text_of(browser, ".messagelist") and text_of(
        browser, ".messagelist"), timeout=45, message="the test outcome")
    assert "in_app: delivered" in message and "push: skipped, no contact (no push device)" in message, message
    shot(browser, "campaign-test-sent")
    assert "test sent" in text_of(browser, "#events-group")  # the audit trail, visible to a marketer

    # the marketer hands it over: scheduling is a launch (beat sends what was scheduled), a Sender's to do
    browser.get(f"{site}/admin/campaigns/campaign/")
    listing = text_of(browser, "#result_list")
    assert "Derby day offer" in listing and "Draft" in listing and "~3,000" in listing
    for action in ("launch_campaigns", "schedule_campaigns"):
        assert not browser.find_elements("css selector", f"select[name=action] option[value={action}]")
    log_in(browser, site, staff("Sender"))
    browser.get(f"{site}/admin/campaigns/campaign/")
    by_css(browser, f"input[name=_selected_action][value='{campaign.pk}']").click()
    by_css(browser, "select[name=action] option[value=schedule_campaigns]").click()
    by_css(browser, "button[name=index]").click()
    wait(browser, lambda: "scheduled" in text_of(browser, ".messagelist"), message="the schedule")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SCHEDULED
    shot(browser, "campaign-list")


def test_sender_launches_pauses_resumes_and_watches_the_results(browser, site, provider, fans):  # noqa: F811
    sender = staff("Sender")
    template = Template.objects.create(name="kick-off", push_title="Kick-off {{ team }}")
    campaign = Campaign.objects.create(name="Kick-off", category=Category.objects.get(slug="goal-alerts"),
                                       template=template, channels=["push"], context={"team": "Home"},
                                       audience_kind="topic", topic=Topic.objects.get(slug="test-fans"))
    provider.reset(latency_ms=2500)  # slow enough to pause mid-send: six provider calls, two at a time
    log_in(browser, site, sender)
    browser.get(f"{site}/admin/campaigns/campaign/")

    def act(action: str) -> None:
        browser.get(f"{site}/admin/campaigns/campaign/")
        by_css(browser, f"input[name=_selected_action][value='{campaign.pk}']").click()
        by_css(browser, f"select[name=action] option[value={action}]").click()
        by_css(browser, "button[name=index]").click()
        wait(browser, lambda: text_of(browser, ".messagelist"), message=action)

    act("launch_campaigns")
    browser.get(f"{site}/admin/campaigns/campaign/{campaign.pk}/change/")
    wait(browser, lambda: text_of(browser, "#campaign-status") == "Running", message="status running")
    act("pause_campaigns")
    browser.get(f"{site}/admin/campaigns/campaign/{campaign.pk}/change/")
    wait(browser, lambda: text_of(browser, "#campaign-status") == "Paused", message="status paused")
    wait(browser, lambda: text_of(browser, "#campaign-progress-text").startswith("Paused:"), message="bar paused")
    shot(browser, "campaign-paused")
    act("resume_campaigns")
    browser.get(f"{site}/admin/campaigns/campaign/{campaign.pk}/change/")
    # status and bar are live together: no reload between "Running" and "Completed"
    wait(browser, lambda: text_of(browser, "#campaign-status") == "Completed", timeout=90, message="completion")
    wait(browser, lambda: text_of(browser, "#campaign-progress-text").startswith("Completed: 3,000 of 3,000"))
    def push_results():  # noqa: ANN202 (the panel re-renders as it refreshes: read it whole, again if stale)
        rows = browser.find_elements("css selector", "#campaign-results tr[data-channel=push]")
        return rows and (rows[0].find_element("css selector", ".sent").text,
                         rows[0].find_element("css selector", ".skipped").text)

    sent_text, skipped = wait(browser, push_results, message="the results panel")
    sent = int(sent_text)
    assert sent > 0 and "opted out:" in skipped and "no contact:" in skipped
    shot(browser, "campaign-results")
    browser.refresh()
    audit = wait(browser, lambda: text_of(browser, "#events-group"), message="the audit trail")
    assert all(action in audit for action in ("launched", "paused", "resumed", "completed")), audit
