"""The web console in a real headless Chromium (Debian's chromium and chromium-driver, driven
through WebDriver): sign in, deploy a registered revision to three real hosts and watch them
reach Succeeded without a reload, open a failed host's log, stop a deployment, and check that a
read-only key sees no actions and cannot post one. Plus the sign-in and form protections over
plain HTTP, and a 1,000-host deployment page that stays small."""

import http.cookiejar
import os
import pathlib
import shutil
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import NoRedirect
from hostsim import wait_for, wait_for_status
from monitoring import SERVICE_ROLE
from realhost import bundle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Set to a directory (docs/images) to keep the screenshots of the main pages.
SCREENSHOTS = os.environ.get("LANDFALL_SCREENSHOTS")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1000"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def shot(driver, name, tmp_path):
    """A screenshot of the page as it is: into the test's directory, and docs/images on request."""
    path = (pathlib.Path(SCREENSHOTS) if SCREENSHOTS else tmp_path) / f"console-{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000


def sign_in(driver, server, key_id, secret):
    from selenium.webdriver.common.by import By

    driver.get(server.endpoint + "/console")
    assert "/console/login" in driver.current_url, "a signed-out visit goes to the sign-in page"
    driver.find_element(By.ID, "key").send_keys(key_id)
    driver.find_element(By.ID, "secret").send_keys(secret)
    driver.find_element(By.CSS_SELECTOR, "form button").click()
    wait_for(lambda: "/console/deployments" in driver.current_url, timeout=10, message="signed in")


def revision(tmp_path, version, slow_seconds=0):
    """Writes `version` to $OUT_DIR/$TEST_HOST; fails ValidateService on the host named by
    $FAIL_ON with a message on standard error."""
    start = (f"#!/bin/sh\necho starting {version} on $TEST_HOST\nsleep {slow_seconds}\n"
             f"echo {version} > \"$OUT_DIR/$TEST_HOST\"\necho started {version} on $TEST_HOST\n")
    validate = (f"#!/bin/sh\nif [ \"$FAIL_ON\" = \"$TEST_HOST\" ] && [ \"{version}\" = v2 ]; then\n"
                f"  echo \"{version} cannot answer on $TEST_HOST\" >&2\n  exit 1\nfi\necho {version} is healthy\n")
    appspec = ("version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n"
               "  ValidateService:\n    - location: validate.sh\n")
    return bundle(tmp_path / f"{version}.tgz", {"appspec.yml": (appspec, 0o644), "start.sh": (start, 0o755),
                                                "validate.sh": (validate, 0o755)})


def register(server, path):
    key = path.name
    assert server.aws("s3", "cp", str(path), f"s3://bundles/{key}").ok
    result = server.aws("deploy", "register-application-revision", "--application-name", "shop",
                        "--s3-location", f"bucket=bundles,key={key},bundleType=tgz", "--description", key)
    assert result.ok, result.stderr


def setup_shop(server, config="CodeDeployDefault.OneAtATime"):
    assert server.aws("s3", "mb", "s3://bundles").ok
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok
    created = server.aws("deploy", "create-deployment-group", "--application-name", "shop",
                         "--deployment-group-name", "web", "--service-role-arn", SERVICE_ROLE,
                         "--deployment-config-name", config,
                         "--on-premises-instance-tag-filters", "Key=role,Value=web,Type=KEY_AND_VALUE")
    assert created.ok, created.stderr


def deploy_from_group_page(driver, server, description):
    """Deploys the revision with `description` from the group's page, confirming."""
    from selenium.webdriver.common.by import By

    driver.get(server.endpoint + "/console/applications")
    driver.find_element(By.LINK_TEXT, "web").click()
    row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "tr") if description in r.text)
    row.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: "Confirm" in driver.title, timeout=10, message="the confirmation page")
    driver.find_element(By.CSS_SELECTOR, "main form button").click()
    wait_for(lambda: "notice=created" in driver.current_url, timeout=10, message="the deployment page")
    return driver.current_url.split("/console/deployments/", 1)[1].split("?", 1)[0]


def settled(action, attempts=20):
    """Runs `action`, again if the live page replaced what it was looking at meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(attempts - 1):
        try:
            return action()
        except StaleElementReferenceException:
            continue
    return action()


def status_text_of_hosts(driver):
    from selenium.webdriver.common.by import By

    return settled(lambda: "".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "table.hosts")))


def status_text(driver):
    from selenium.webdriver.common.by import By

    return settled(lambda: "".join(e.text for e in driver.find_elements(By.ID, "status")))


def test_deploy_watch_log_and_stop_in_the_browser(server, cd, hosts, browser, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "out"
    out.mkdir()
    for name in ["web-1", "web-2", "web-3"]:
        hosts(name, start=False, role="web").start(TEST_HOST=name, OUT_DIR=str(out), FAIL_ON="web-2")
    setup_shop(server)
    for version, slow in [("v1", 2), ("v2", 0), ("v3", 8)]:
        register(server, revision(tmp_path, version, slow))

    key_id, secret, _ = server.admin_key()
    sign_in(browser, server, key_id, secret)
    shot(browser, "deployments-empty", tmp_path)

    # Deploy v1 from the group page and watch the hosts finish, with no reload.
    deployment = deploy_from_group_page(browser, server, "v1.tgz")
    browser.execute_script("window.landfallNoReload = true;")
    wait_for(lambda: "InProgress" in status_text(browser), timeout=20, message="the page to show InProgress")
    wait_for(lambda: "Succeeded" in status_text(browser), timeout=60, message="the page to show Succeeded")
    assert browser.execute_script("return window.landfallNoReload === true;"), "the page was reloaded"
    hosts_table = settled(lambda: browser.find_element(By.CSS_SELECTOR, "table.hosts").text)
    assert hosts_table.count("Succeeded") >= 3 * 7, hosts_table
    assert cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] == "Succeeded"
    shot(browser, "deployment", tmp_path)

    # v2 fails on web-2: its ValidateService log shows what the script printed.
    failed = deploy_from_group_page(browser, server, "v2.tgz")
    wait_for(lambda: "Failed" in status_text(browser), timeout=60, message="the page to show Failed")
    assert "cannot answer on web-2" in settled(lambda: browser.find_element(By.CSS_SELECTOR, "table.hosts").text)
    def open_log():
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table.hosts > tbody > tr") if "web-2" in r.text)
        item = next(li for li in row.find_elements(By.TAG_NAME, "li") if li.text.startswith("ValidateService"))
        item.find_element(By.LINK_TEXT, "log").click()

    settled(open_log)
    log = browser.find_element(By.ID, "log").text
    assert "v2 cannot answer on web-2" in log, log
    shot(browser, "failed-host-log", tmp_path)
    assert cd.get_deployment(deploymentId=failed)["deploymentInfo"]["status"] == "Failed"

    # Roll the failed deployment back from its page: the previous revision, v1, everywhere again.
    browser.get(f"{server.endpoint}/console/deployments/{failed}")
    settled(lambda: browser.find_element(By.XPATH, "//button[contains(., 'Roll back')]").click())
    wait_for(lambda: "Confirm" in browser.title, timeout=10, message="the confirmation page")
    assert "v1.tgz" in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "main form button").click()
    wait_for(lambda: "notice=created" in browser.current_url, timeout=10, message="the rollback's page")
    wait_for(lambda: "Succeeded" in status_text(browser), timeout=60, message="the rollback to succeed")
    assert sorted(p.read_text().strip() for p in out.iterdir()) == ["v1", "v1", "v1"]

    # v3 takes 8 s per host. Its running hook's log is followed live...
    slow = deploy_from_group_page(browser, server, "v3.tgz")
    wait_for(lambda: "InProgress" in status_text(browser), timeout=20, message="v3 to start")
    wait_for(lambda: "ApplicationStart ● InProgress" in status_text_of_hosts(browser), timeout=20,
             message="web-1's ApplicationStart to run")
    browser.get(f"{server.endpoint}/console/deployments/{slow}/log?host=web-1&event=ApplicationStart")
    log = browser.find_element(By.ID, "log")
    assert "starting v3 on web-1" in log.text and "started" not in log.text
    wait_for(lambda: "started v3 on web-1" in browser.find_element(By.ID, "log").text, timeout=30,
             message="the rest of the output to arrive without a reload")
    # ... and it is stopped from its page, confirming, while web-2 runs.
    browser.get(f"{server.endpoint}/console/deployments/{slow}")
    settled(lambda: browser.find_element(By.XPATH, "//button[normalize-space()='Stop…']").click())
    wait_for(lambda: "Confirm" in browser.title, timeout=10, message="the confirmation page")
    assert slow in browser.page_source
    assert browser.find_element(By.LINK_TEXT, "Cancel").get_attribute("href").endswith(f"/console/deployments/{slow}")
    browser.find_element(By.CSS_SELECTOR, "main form button").click()
    wait_for(lambda: "notice=stopped" in browser.current_url, timeout=10, message="back on the deployment")
    wait_for(lambda: "Stopped" in status_text(browser), timeout=60, message="the page to show Stopped")
    assert cd.get_deployment(deploymentId=slow)["deploymentInfo"]["errorInformation"]["code"] == "MANUAL_STOP"

    # The other pages, and the record of what was done.
    for section, name in [("applications", "applications"), ("instances", "instances"), ("deployments", "deployments"),
                          ("audit", "audit")]:
        browser.get(f"{server.endpoint}/console/{section}")
        shot(browser, name, tmp_path)
    audit = browser.find_element(By.TAG_NAME, "table").text
    assert "Console.SignIn" in audit and "CreateDeployment" in audit and "StopDeployment" in audit
    browser.get(f"{server.endpoint}/console/applications/shop/groups/web")
    shot(browser, "group", tmp_path)
    assert "web-1" in browser.page_source and "Last successful" in browser.page_source

    # Narrow (phone) width: the hosts table still reads.
    browser.set_window_size(390, 900)
    browser.get(f"{server.endpoint}/console/deployments/{deployment}")
    shot(browser, "deployment-phone", tmp_path)
    browser.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    wait_for(lambda: "/console/login" in browser.current_url, timeout=10, message="signed out")
    browser.get(f"{server.endpoint}/console/deployments")
    assert "/console/login" in browser.current_url


def test_a_read_only_key_sees_no_actions_and_cannot_post_one(server, cd, browser, tmp_path):
    from selenium.webdriver.common.by import By

    setup_shop(server)
    register(server, revision(tmp_path, "v1"))
    # A deployment with no host to run on stays InProgress until stopped: something to act on.
    assert server.aws("deploy", "register-on-premises-instance", "--instance-name", "idle-1",
                      "--iam-user-arn", "arn:aws:iam::123456789012:user/idle-1").ok
    assert server.aws("deploy", "add-tags-to-on-premises-instances", "--instance-names", "idle-1",
                      "--tags", "Key=role,Value=web").ok
    created = server.aws("deploy", "create-deployment", "--application-name", "shop", "--deployment-group-name", "web",
                         "--s3-location", "bucket=bundles,key=v1.tgz,bundleType=tgz")
    deployment = created.json["deploymentId"]
    wait_for(lambda: cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] == "InProgress",
             timeout=20, message="the deployment to start")

    key = server.landfall("keys", "create", "--role", "read-only", "--output", "json").json["accessKey"]
    sign_in(browser, server, key["accessKeyId"], key["secretAccessKey"])
    browser.get(f"{server.endpoint}/console/deployments/{deployment}")
    assert deployment in browser.title
    assert not browser.find_elements(By.XPATH, "//button[contains(., 'Stop')]"), "no action buttons"
    browser.get(f"{server.endpoint}/console/applications/shop/groups/web")
    assert not browser.find_elements(By.XPATH, "//button[contains(., 'Deploy')]")
    # Posting the action anyway, with the session's own token, is refused and changes nothing.
    status = browser.execute_script(
        "var token = document.querySelector('input[name=csrf]').value;"
        f"return fetch('/console/deployments/{deployment}/stop', {{method: 'POST', body: new URLSearchParams("
        "{csrf: token, confirmed: 'yes'})}).then(function (r) { return r.status; });")
    assert status == 403
    assert cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] == "InProgress"
    browser.get(f"{server.endpoint}/console/audit")
    assert "Only administrator keys" in browser.page_source
    refused = [r for r in server.landfall("audit", "--output", "json").json if r["operation"] == "StopDeployment"]
    assert [(r["accessKeyId"], r["result"]) for r in refused] == [(key["accessKeyId"], "AccessDeniedException")]
    cd.stop_deployment(deploymentId=deployment)


def post(server, path, fields, *, origin=True, cookies=None):
    request = urllib.request.Request(server.endpoint + path, data=urllib.parse.urlencode(fields).encode(),
                                     method="POST")
    if origin:
        request.add_header("Origin", server.endpoint)
    return send(request, cookies)


def send(request, cookies=None):
    """(status, headers, body) of a request, redirects not followed."""
    handlers = [NoRedirect()] + ([urllib.request.HTTPCookieProcessor(cookies)] if cookies is not None else [])
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=10) as response:
            return response.status, lowered(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, lowered(error.headers), error.read().decode()


def lowered(headers):
    return {name.lower(): value for name, value in headers.items()}


def test_sign_in_and_forms_are_protected(server):
    key_id, secret, _ = server.admin_key()
    # A wrong secret is refused (and audited); a right one sets a protected cookie.
    status, _, body = post(server, "/console/login", {"access_key_id": key_id, "secret_access_key": "wrong"})
    assert status == 401 and "do not match" in body
    status, headers, _ = post(server, "/console/login", {"access_key_id": key_id, "secret_access_key": secret})
    assert status == 303
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie, "plain HTTP: a Secure cookie would never come back"
    # A form posted from elsewhere is refused, signed in or not.
    status, _, _ = post(server, "/console/login", {"access_key_id": key_id, "secret_access_key": secret},
                        origin=False)
    assert status == 403
    jar = http.cookiejar.CookieJar()
    post(server, "/console/login", {"access_key_id": key_id, "secret_access_key": secret}, cookies=jar)
    assert any(c.name == "landfall_session" for c in jar)
    # Signed in, an action without the session's token is refused.
    status, _, body = post(server, "/console/logout", {}, cookies=jar)
    assert status == 403 and "token" in body
    # A tampered cookie is no session.
    value = cookie.split("=", 1)[1].split(";")[0]
    for forged in [value[:-2] + ("00" if not value.endswith("00") else "11"), value.replace(key_id, "AKLFSOMEONEELSE0000")]:
        status, headers, _ = send(urllib.request.Request(server.endpoint + "/console/deployments",
                                                         headers={"Cookie": f"landfall_session={forged}"}))
        assert status == 303 and headers["location"].startswith("/console/login"), (status, headers)
    status, _, _ = send(urllib.request.Request(server.endpoint + "/console/deployments",
                                               headers={"Cookie": f"landfall_session={value}"}))
    assert status == 200
    signins = [r for r in server.landfall("audit", "--output", "json").json if r["operation"] == "Console.SignIn"]
    assert [r["result"] for r in signins][:2] == ["AccessDenied", "Success"]
    # Ten wrong guesses from one address slow further attempts with that key from there, but
    # the right secret still signs in (it used to be refused for five minutes).
    for _ in range(10):
        assert post(server, "/console/login", {"access_key_id": key_id, "secret_access_key": "guess"})[0] == 401
    status, headers, _ = post(server, "/console/login", {"access_key_id": key_id, "secret_access_key": secret})
    assert status == 303 and "landfall_session=" in headers["set-cookie"]


def test_a_thousand_host_deployment_page_stays_small(server, cd, browser):
    from selenium.webdriver.common.by import By

    setup_shop(server)
    for index in range(1000):
        name = f"host-{index:04d}"
        cd.register_on_premises_instance(instanceName=name, iamUserArn=f"arn:aws:iam::123456789012:user/{name}")
    names = [f"host-{index:04d}" for index in range(1000)]
    for start in range(0, 1000, 100):
        cd.add_tags_to_on_premises_instances(tags=[{"Key": "role", "Value": "web"}], instanceNames=names[start:start + 100])
    deployment = cd.create_deployment(applicationName="shop", deploymentGroupName="web", revision={
        "revisionType": "S3", "s3Location": {"bucket": "bundles", "key": "none.tgz", "bundleType": "tgz"}})["deploymentId"]
    key_id, secret, _ = server.admin_key()
    sign_in(browser, server, key_id, secret)
    browser.get(f"{server.endpoint}/console/deployments/{deployment}")
    size = browser.execute_script("return document.documentElement.outerHTML.length;")
    assert size < 100_000, size
    assert "Hosts (1000)" in browser.page_source
    rows = browser.find_elements(By.CSS_SELECTOR, "table.hosts > tbody > tr")
    assert len(rows) == 50
    browser.find_element(By.LINK_TEXT, "20").click()
    assert "host-0999" in browser.find_element(By.CSS_SELECTOR, "table.hosts").text
    cd.stop_deployment(deploymentId=deployment)
    wait_for_status(cd, deployment)


def test_a_blue_green_deployment_is_continued_from_the_console(server, cd, hosts, browser, tmp_path):
    """Ready, the page shows the traffic and a Continue button; after it, the termination wait
    is ended the same way."""
    from selenium.webdriver.common.by import By

    from routers import Router, create_target_group, revision as app_revision, stop_apps, upload
    from sources import free_port

    ports = {}
    create_target_group(server, router="builtin")
    for name, color in [("blue-0", "blue"), ("green-0", "green")]:
        ports[name] = free_port()
        hosts(name, start=False, role="web", color=color).start(
            TEST_HOST=name, APP_PORT=str(ports[name]), APP_DIR=str(tmp_path / "apps" / name))
        registered = server.landfall("target-group", "register", "web", name, f"127.0.0.1:{ports[name]}", "--standby")
        assert registered.ok, registered.stderr
    router = Router(server, "builtin", tmp_path)
    try:
        cd.create_application(applicationName="app")
        assert server.aws("s3", "mb", "s3://bundles").ok
        cd.create_deployment_group(
            applicationName="app", deploymentGroupName="web", serviceRoleArn=SERVICE_ROLE,
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
            onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
            blueGreenDeploymentConfiguration={
                "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE",
                                                              "terminationWaitTimeInMinutes": 60},
                "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
                "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
            })
        deployment = cd.create_deployment(
            applicationName="app", deploymentGroupName="web",
            revision=upload(server, app_revision(tmp_path, "v1"), "v1.tgz"),
            targetInstances={"tagFilters": [{"Key": "color", "Value": "blue", "Type": "KEY_AND_VALUE"}]},
        )["deploymentId"]
        assert wait_for_status(cd, deployment, statuses=("Ready", "Failed", "Stopped"), timeout=120)["status"] == "Ready"

        key_id, secret, _ = server.admin_key()
        sign_in(browser, server, key_id, secret)
        browser.get(f"{server.endpoint}/console/deployments/{deployment}")
        traffic = browser.find_element(By.XPATH, "//h3[contains(., 'Target group web')]/following-sibling::table[1]").text
        assert "blue-0 Green" in traffic and "green-0 Blue" in traffic, traffic
        shot(browser, "blue-green-ready", tmp_path)

        def press(label):
            settled(lambda: browser.find_element(By.XPATH, f"//button[starts-with(normalize-space(), '{label}')]").click())
            wait_for(lambda: "Confirm" in browser.title, timeout=10, message="the confirmation page")
            browser.find_element(By.CSS_SELECTOR, "main form button").click()
            wait_for(lambda: "notice=continued" in browser.current_url, timeout=10, message="back on the deployment")

        press("Continue: reroute traffic")
        wait_for(lambda: cd.get_deployment(deploymentId=deployment)["deploymentInfo"].get(
            "instanceTerminationWaitTimeStarted"), timeout=60, message="the termination wait")
        browser.get(f"{server.endpoint}/console/deployments/{deployment}")
        press("End the termination wait")
        assert wait_for_status(cd, deployment, timeout=60)["status"] == "Succeeded"
        continued = [r for r in server.landfall("audit", "--output", "json").json if r["operation"] == "ContinueDeployment"]
        assert [r["result"] for r in continued] == ["Success", "Success"]
    finally:
        router.close()
        stop_apps(tmp_path, ports)
