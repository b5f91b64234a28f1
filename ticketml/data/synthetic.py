"""Deterministic synthetic ticket export (English + Russian) with learnable topic/priority cues.

Each ticket = greeting + a topic phrase (sometimes a misleading one from another topic) +
optional filler + an urgency cue (sometimes absent or pointing one level off) + sign-off, with
typos and label noise, so a TF-IDF baseline lands clearly above chance but below perfect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOPIC_WEIGHTS = {
    "technical support": 0.24,
    "billing": 0.18,
    "account access": 0.17,
    "network": 0.14,
    "hardware": 0.12,
    "feature request": 0.09,
    "security": 0.06,
}
PRIORITIES = ("low", "medium", "high")
# P(priority | topic): security/network skew high, feature requests skew low.
PRIORITY_BY_TOPIC = {
    "technical support": (0.30, 0.45, 0.25),
    "billing": (0.30, 0.50, 0.20),
    "account access": (0.20, 0.45, 0.35),
    "network": (0.15, 0.40, 0.45),
    "hardware": (0.30, 0.45, 0.25),
    "feature request": (0.65, 0.30, 0.05),
    "security": (0.10, 0.30, 0.60),
}

SLOTS = {
    "en": {
        "app": [
            "the CRM",
            "the mobile app",
            "the web portal",
            "Outlook",
            "the reporting tool",
            "Jira",
            "the HR system",
        ],
        "device": [
            "laptop",
            "printer",
            "monitor",
            "docking station",
            "phone",
            "keyboard",
            "headset",
        ],
        "code": ["0x80070005", "E-1042", "500", "403", "ERR_TIMEOUT", "1603"],
        "amount": ["$49", "$120", "$15.99", "$300", "$2,400"],
    },
    "ru": {
        "app": [
            "CRM",
            "мобильное приложение",
            "веб-портал",
            "Outlook",
            "систему отчётов",
            "Jira",
            "кадровую систему",
        ],
        "device": [
            "ноутбук",
            "принтер",
            "монитор",
            "док-станцию",
            "телефон",
            "клавиатуру",
            "гарнитуру",
        ],
        "code": ["0x80070005", "E-1042", "500", "403", "ERR_TIMEOUT", "1603"],
        "amount": ["4900 руб.", "12000 руб.", "1599 руб.", "300 евро", "2400 руб."],
    },
}

TOPIC_PHRASES = {
    "en": {
        "technical support": [
            "{app} crashes every time I open it",
            "{app} shows error {code} after the update",
            "I cannot install {app}, the installer fails with code {code}",
            "{app} is extremely slow and freezes",
            "the latest update broke {app}",
            "{app} does not save my changes",
            "reports in {app} come out empty",
        ],
        "billing": [
            "I was charged {amount} twice this month",
            "my invoice shows the wrong amount of {amount}",
            "please refund the payment of {amount}",
            "the subscription renewed without my consent",
            "I need a copy of the invoice for last month",
            "my card was declined but the money was taken",
            "why did the price go up to {amount}",
        ],
        "account access": [
            "I cannot log in to {app}, my password is not accepted",
            "my account is locked after several attempts",
            "the password reset link does not arrive",
            "two-factor codes are rejected when I sign in",
            "I lost access to my account after changing my e-mail",
            "please unlock the account of a new colleague",
            "single sign-on redirects me back to the login page",
        ],
        "network": [
            "I cannot connect to the VPN from my {device}",
            "the Wi-Fi in the office keeps dropping",
            "internet is very slow on the third floor",
            "the shared drive is unreachable over the network",
            "DNS does not resolve internal sites",
            "the VPN disconnects every few minutes",
            "no network connection after plugging in the cable",
        ],
        "hardware": [
            "my {device} does not turn on",
            "the {device} is making a strange noise",
            "the screen of my {device} flickers",
            "the {device} battery drains within an hour",
            "the {device} was damaged and needs replacing",
            "the {device} is not recognised over USB",
            "paper keeps jamming in the printer",
        ],
        "feature request": [
            "it would be great if {app} could export to Excel",
            "please add a dark mode to {app}",
            "could you add bulk editing to {app}",
            "we would like an API for {app}",
            "suggestion: allow filtering reports by region",
            "please support Russian in {app}",
            "can we get calendar integration in {app}",
        ],
        "security": [
            "I received a suspicious phishing e-mail asking for my password",
            "someone logged into my account from an unknown country",
            "antivirus flagged malware on my {device}",
            "I think my credentials were leaked",
            "a stranger asked for access codes by phone",
            "ransomware warning appeared on my {device}",
            "unusual login alerts keep coming for {app}",
        ],
    },
    "ru": {
        "technical support": [
            "{app} вылетает при каждом запуске",
            "{app} выдаёт ошибку {code} после обновления",
            "не могу установить {app}, установщик падает с кодом {code}",
            "{app} очень медленно работает и зависает",
            "последнее обновление сломало {app}",
            "{app} не сохраняет изменения",
            "отчёты в {app} выгружаются пустыми",
        ],
        "billing": [
            "с меня дважды списали {amount} в этом месяце",
            "в счёте неверная сумма {amount}",
            "прошу вернуть платёж {amount}",
            "подписка продлилась без моего согласия",
            "нужна копия счёта за прошлый месяц",
            "карту отклонили, но деньги списались",
            "почему цена выросла до {amount}",
        ],
        "account access": [
            "не могу войти в {app}, пароль не принимается",
            "учётная запись заблокирована после нескольких попыток",
            "не приходит ссылка для сброса пароля",
            "коды двухфакторной аутентификации отклоняются",
            "потерял доступ к аккаунту после смены почты",
            "разблокируйте учётную запись нового коллеги",
            "единый вход возвращает меня на страницу входа",
        ],
        "network": [
            "не могу подключиться к VPN с {device}",
            "в офисе постоянно пропадает Wi-Fi",
            "очень медленный интернет на третьем этаже",
            "сетевой диск недоступен",
            "DNS не разрешает внутренние сайты",
            "VPN отключается каждые несколько минут",
            "нет подключения к сети после подключения кабеля",
        ],
        "hardware": [
            "мой {device} не включается",
            "{device} издаёт странный шум",
            "мерцает экран, {device} не работает нормально",
            "батарея разряжается за час, {device} не держит заряд",
            "{device} повреждён и требует замены",
            "{device} не определяется по USB",
            "в принтере постоянно застревает бумага",
        ],
        "feature request": [
            "было бы здорово, если бы {app} умела экспортировать в Excel",
            "добавьте тёмную тему в {app}",
            "можно ли добавить массовое редактирование в {app}",
            "нам нужен API для {app}",
            "предложение: фильтр отчётов по регионам",
            "поддержите английский язык в {app}",
            "хотим интеграцию с календарём в {app}",
        ],
        "security": [
            "пришло подозрительное фишинговое письмо с просьбой ввести пароль",
            "кто-то вошёл в мой аккаунт из другой страны",
            "антивирус нашёл вредоносное ПО на {device}",
            "похоже, мои учётные данные утекли",
            "незнакомец по телефону просил коды доступа",
            "на {device} появилось сообщение вымогателя",
            "постоянно приходят оповещения о странных входах в {app}",
        ],
    },
}

URGENCY = {
    "en": {
        "high": [
            "This is urgent, the whole team is blocked.",
            "Production is down, please help ASAP!",
            "Critical: we are losing customers right now.",
            "Please treat this as top priority, nobody can work.",
            "URGENT - deadline is in one hour.",
        ],
        "medium": [
            "It affects a few colleagues, please look at it today.",
            "It is annoying but we have a workaround.",
            "Would appreciate a fix this week.",
            "Some of our work is slowed down by this.",
        ],
        "low": [
            "No rush, whenever you have time.",
            "Just a question, nothing is blocked.",
            "Low priority, it can wait until next month.",
            "Not urgent at all, just letting you know.",
        ],
    },
    "ru": {
        "high": [
            "Срочно, вся команда стоит.",
            "Продакшн лежит, помогите как можно скорее!",
            "Критично: мы прямо сейчас теряем клиентов.",
            "Это высший приоритет, никто не может работать.",
            "СРОЧНО - дедлайн через час.",
        ],
        "medium": [
            "Затрагивает нескольких коллег, посмотрите сегодня, пожалуйста.",
            "Неприятно, но есть обходной путь.",
            "Хотелось бы исправить на этой неделе.",
            "Из-за этого часть работы замедлилась.",
        ],
        "low": [
            "Не срочно, когда будет время.",
            "Просто вопрос, ничего не блокирует.",
            "Низкий приоритет, может подождать до следующего месяца.",
            "Совсем не срочно, просто сообщаю.",
        ],
    },
}

GREETINGS = {
    "en": ["Hello,", "Hi team,", "Dear support,", "Good morning,", ""],
    "ru": ["Здравствуйте,", "Добрый день,", "Привет,", "Уважаемая поддержка,", ""],
}
FILLERS = {
    "en": [
        "I already restarted everything.",
        "This started yesterday.",
        "My colleague has the same issue.",
        "Details are below.",
        "I tried the steps from the wiki.",
        "",
    ],
    "ru": [
        "Я уже всё перезагрузил.",
        "Началось вчера.",
        "У коллеги то же самое.",
        "Подробности ниже.",
        "Пробовал шаги из инструкции.",
        "",
    ],
}
SIGNOFFS = {
    "en": ["Thanks.", "Best regards, {name}", "Thank you!", "", "Contact me at {email}."],
    "ru": ["Спасибо.", "С уважением, {name}", "Заранее спасибо!", "", "Мой адрес: {email}."],
}
NAMES = {
    "en": ["John", "Maria", "Alex", "Priya", "Tom"],
    "ru": ["Иван", "Мария", "Алексей", "Ольга", "Дмитрий"],
}


# Long tickets (`long_share`): what real exports look like — a log or stack trace, a config
# snippet, URLs and HTML remnants, a quoted earlier mail — with the topic carried by component
# names (class names, hosts, config keys) as much as by prose, and the urgency sentence at the
# end, after the paste. Every part is drawn from the written topic alone (or is noise), so the
# Bayes ceiling (bayes_proba) stays exact.
COMPONENTS = {
    "technical support": {
        "service": ["crm-app", "report-engine", "desktop-client", "sync-agent"],
        "classes": [
            "com.acme.crm.SaveHandler",
            "com.acme.reports.ReportGenerator",
            "com.acme.client.UpdateInstaller",
            "com.acme.sync.DocumentCache",
        ],
        "keys": ["crm.autosave.enabled", "reports.export.timeout_ms", "client.update.channel"],
        "path": ["crm/records", "reports/export", "client/update"],
        "errors": [
            "NullPointerException",
            "IllegalStateException: record not saved",
            "TimeoutException: report rendering exceeded 30000 ms",
        ],
    },
    "billing": {
        "service": ["billing-service", "invoice-renderer", "payment-gateway", "subscription-api"],
        "classes": [
            "com.acme.billing.InvoiceService",
            "com.acme.billing.PaymentGateway",
            "com.acme.billing.RefundProcessor",
            "com.acme.billing.SubscriptionRenewal",
        ],
        "keys": ["billing.currency", "invoice.pdf.template", "payments.retry.max_attempts"],
        "path": ["billing/invoices", "account/payments", "billing/subscriptions"],
        "errors": [
            "DuplicateChargeException",
            "PaymentDeclinedException: card_declined",
            "InvoiceTotalMismatch: expected 49.00 got 98.00",
        ],
    },
    "account access": {
        "service": ["auth-service", "sso-bridge", "mfa-provider", "identity-api"],
        "classes": [
            "com.acme.auth.LoginController",
            "com.acme.auth.PasswordResetMailer",
            "com.acme.auth.TotpVerifier",
            "com.acme.sso.SamlResponseValidator",
        ],
        "keys": ["auth.lockout.threshold", "sso.saml.idp_url", "mfa.totp.window"],
        "path": ["login", "account/password-reset", "sso/saml/acs"],
        "errors": [
            "AccountLockedException",
            "InvalidCredentialsException",
            "SamlValidationException: assertion expired",
        ],
    },
    "network": {
        "service": ["vpn-gateway", "dns-resolver", "wlan-controller", "proxy-edge"],
        "classes": [
            "net.acme.vpn.TunnelManager",
            "net.acme.dns.ResolverCache",
            "net.acme.wlan.AccessPointMonitor",
            "net.acme.proxy.ConnectionPool",
        ],
        "keys": ["vpn.keepalive_s", "dns.upstream", "wlan.roaming.threshold_dbm"],
        "path": ["vpn/status", "network/dns", "wifi/floor-3"],
        "errors": [
            "ConnectionResetException: peer closed tunnel",
            "UnknownHostException",
            "SocketTimeoutException: connect timed out",
        ],
    },
    "hardware": {
        "service": ["device-agent", "printer-spooler", "firmware-updater", "usb-monitor"],
        "classes": [
            "hw.acme.power.BatteryManager",
            "hw.acme.print.SpoolerQueue",
            "hw.acme.display.PanelDriver",
            "hw.acme.usb.HubEnumerator",
        ],
        "keys": ["power.battery.threshold", "spooler.jam.retry", "display.refresh_hz"],
        "path": ["devices/inventory", "printers/queue", "devices/rma"],
        "errors": [
            "DeviceNotRecognized: usb 2-1",
            "PaperJamException: tray 2",
            "BatteryHealthCritical: 41%",
        ],
    },
    "feature request": {
        "service": ["roadmap-portal", "export-module", "ui-theme", "public-api"],
        "classes": [
            "com.acme.export.ExcelWriter",
            "com.acme.ui.ThemeRegistry",
            "com.acme.api.BulkEditEndpoint",
            "com.acme.calendar.IcalFeed",
        ],
        "keys": ["export.formats", "ui.theme.default", "api.bulk_edit.enabled"],
        "path": ["ideas/new", "roadmap/votes", "ideas/export-to-excel"],
        "errors": [
            "UnsupportedOperationException: export format xlsx",
            "FeatureDisabledException: bulk_edit",
            "NotImplementedError: dark theme",
        ],
    },
    "security": {
        "service": ["mail-filter", "av-scanner", "siem-collector", "login-anomaly"],
        "classes": [
            "sec.acme.mail.PhishingClassifier",
            "sec.acme.av.QuarantineService",
            "sec.acme.siem.AlertCorrelator",
            "sec.acme.auth.GeoVelocityCheck",
        ],
        "keys": ["mailfilter.quarantine.enabled", "av.realtime.scan", "siem.alert.severity"],
        "path": ["security/incidents", "security/quarantine", "security/alerts"],
        "errors": [
            "MalwareDetected: Trojan.GenericKD",
            "SuspiciousLogin: impossible travel",
            "PhishingReported: credential harvest",
        ],
    },
}
NEUTRAL_LOG = [
    "INFO  [main] o.s.b.StartupInfoLogger - Started application in 4.21 seconds",
    "DEBUG [pool-3-thread-7] c.z.h.HikariPool - Pool stats (total=10, active=2, idle=8)",
    "INFO  [scheduler-1] heartbeat ok latency_ms=12",
    "WARN  [http-nio-8080-exec-4] request took 2314 ms",
    "DEBUG [worker-2] cache miss key=session:7f3a9c",
    "INFO  [main] loading configuration from /etc/acme/app.yaml",
    "TRACE [io-1] read 4096 bytes from socket",
    "INFO  [gc] G1 Young Generation pause 18ms",
]
MAIL_QUOTE = {
    "en": ["On {day}, {name} <{email}> wrote:", "-----Original Message-----"],
    "ru": ["{day}, {name} <{email}> писал(а):", "-----Исходное сообщение-----"],
}
LOG_INTRO = {
    "en": ["Here is the log:", "Stack trace below:", "Log excerpt attached:", "Output:"],
    "ru": ["Вот лог:", "Трассировка ниже:", "Фрагмент лога:", "Вывод:"],
}
DAYS = ["Mon, 3 Mar 2025 09:14", "Tue, 11 Feb 2025 16:02", "Fri, 24 Jan 2025 11:47"]


LOG_LINES = 120  # the longest pasted log
# each log line's timestamp, by its position in the log
LOG_TIMES = [
    f"2025-03-0{1 + i % 9}T{8 + i % 10:02d}:{i * 7 % 60:02d}:{i * 13 % 60:02d}.{i * 37 % 1000:03d}Z"
    for i in range(LOG_LINES)
]


def _log_block(comp: dict, rng: np.random.Generator) -> str:
    """A pasted log or stack trace: mostly neutral lines, a few naming the topic's components."""
    lines = []
    n = int(np.clip(rng.lognormal(2.6, 0.8), 3, LOG_LINES))
    service = _pick(comp["service"], rng)
    for i in range(n):
        ts = LOG_TIMES[i]
        if rng.random() < 0.2:
            line = f"ERROR [{service}] {_pick(comp['errors'], rng)}"
        elif rng.random() < 0.15:
            cls = _pick(comp["classes"], rng)
            line = f"\tat {cls}.{_pick(['handle', 'run', 'process', 'apply'], rng)}({cls.split('.')[-1]}.java:{int(rng.integers(20, 900))})"
        else:
            line = _pick(NEUTRAL_LOG, rng)
        lines.append(f"{ts} {line}")
    return "\n".join(lines)


def _long_parts(
    topic: str, lang: str, rng: np.random.Generator, name: str
) -> tuple[list[str], list[str]]:
    """(parts after the problem statement, before the urgency sentence; parts after it)."""
    comp = COMPONENTS[topic]
    topics = list(TOPIC_PHRASES[lang])
    middle = []
    if rng.random() < 0.75:
        middle.append(f"{_pick(LOG_INTRO[lang], rng)}\n{_log_block(comp, rng)}")
    if rng.random() < 0.4:
        key = _pick(comp["keys"], rng)
        middle.append(f"<pre>{key} = {int(rng.integers(1, 500))}\nlog.level = DEBUG</pre>")
    if rng.random() < 0.5:
        host = _pick(["portal.acme.example", "intranet.example.com", "status.acme.io"], rng)
        middle.append(
            f"See https://{host}/{_pick(comp['path'], rng)}?id={int(rng.integers(1000, 99999))}"
        )
    if rng.random() < 0.3:
        middle.append(f"<div>&nbsp;{_pick(comp['service'], rng)} &gt; settings</div>")
    after = []
    # an earlier mail quoted below the signature, often about something else
    if rng.random() < 0.45:
        other = topics[int(rng.integers(len(topics)))]
        quoted = _fill(_pick(TOPIC_PHRASES[lang][other], rng), lang, rng)
        header = _pick(MAIL_QUOTE[lang], rng).format(
            day=_pick(DAYS, rng), name=name, email=f"{name.lower()}@example.com"
        )
        after.append(
            f"{header}\n> {quoted[0].upper() + quoted[1:]}.\n> {_pick(FILLERS[lang], rng)}"
        )
    return middle, after


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:
        return word[:i] + word[i + 1 :]  # drop
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swap
    return word[:i] + word[i] + word[i:]  # double


def _fill(template: str, lang: str, rng: np.random.Generator) -> str:
    values = {k: v[int(rng.integers(len(v)))] for k, v in SLOTS[lang].items()}
    return template.format(**values)


def _pick(options: list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


CUE_SHARE, OFF_CUE_SHARE = 0.72, 0.12  # urgency sentence of the true level; one level off


def make_ticket(
    topic: str, priority: str, lang: str, rng: np.random.Generator, long: bool = False
) -> str:
    return _make_ticket(topic, priority, lang, rng, long)[0]


def _with_typos(parts: list[str], rng: np.random.Generator) -> str:
    words = " ".join(p for p in parts if p).split()
    return " ".join(_typo(w, rng) if rng.random() < 0.03 else w for w in words)


def _make_ticket(
    topic: str, priority: str, lang: str, rng: np.random.Generator, long: bool = False
) -> tuple[str, str | None]:
    """The ticket text and the urgency cue's level written into it (None: no cue). A long
    ticket adds pasted logs, config, URLs, markup and a quoted mail (see _long_parts)."""
    topics = list(TOPIC_PHRASES[lang])
    phrase = _fill(_pick(TOPIC_PHRASES[lang][topic], rng), lang, rng)
    parts = [_pick(GREETINGS[lang], rng), phrase[0].upper() + phrase[1:] + "."]
    if rng.random() < 0.25:  # a second, misleading problem mentioned in passing
        other = topics[int(rng.integers(len(topics)))]
        parts.append(
            _fill(_pick(TOPIC_PHRASES[lang][other], rng), lang, rng).capitalize() + " as well."
            if lang == "en"
            else "Также " + _fill(_pick(TOPIC_PHRASES[lang][other], rng), lang, rng) + "."
        )
    parts.append(_pick(FILLERS[lang], rng))
    draw, cue = rng.random(), None
    if draw < CUE_SHARE:
        cue = priority
    elif draw < CUE_SHARE + OFF_CUE_SHARE:  # a cue one level off
        idx = PRIORITIES.index(priority)
        cue = PRIORITIES[min(2, idx + 1)] if rng.random() < 0.5 else PRIORITIES[max(0, idx - 1)]
    tail = [_pick(URGENCY[lang][cue], rng)] if cue is not None else []
    name = _pick(NAMES[lang], rng)
    tail.append(_pick(SIGNOFFS[lang], rng).format(name=name, email=f"{name.lower()}@example.com"))
    if not long:
        return _with_typos(parts + tail, rng), cue
    head, tail_text = _with_typos(parts, rng), _with_typos(tail, rng)
    middle, after = _long_parts(topic, lang, rng, name)
    return "\n\n".join(p for p in [head, *middle, tail_text, *after] if p), cue


def generate(
    n_samples: int,
    seed: int,
    ru_share: float = 0.3,
    label_noise: float = 0.05,
    latents: bool = False,
    long_share: float = 0.0,
) -> pd.DataFrame:
    """Return a DataFrame with columns text, topic, priority, language; same seed → same rows.

    long_share: the share of long tickets (logs, stack traces, config, URLs, markup, quoted
    mails; median about 1,000 characters), like real exports. 0 keeps the rows of earlier versions.

    latents=True adds what the text was written from: `written_topic` (the label before label
    noise) and `cue` (the urgency sentence's level, "" when the ticket has none).
    """
    if n_samples < 1:
        raise ValueError("n_samples must be positive")
    rng = np.random.default_rng(seed)
    topics = list(TOPIC_WEIGHTS)
    weights = np.array(list(TOPIC_WEIGHTS.values()))
    rows = []
    for _ in range(n_samples):
        topic = topics[int(rng.choice(len(topics), p=weights / weights.sum()))]
        priority = PRIORITIES[int(rng.choice(3, p=PRIORITY_BY_TOPIC[topic]))]
        lang = "ru" if rng.random() < ru_share else "en"
        long = long_share > 0 and rng.random() < long_share  # no draw at 0: same rows as before
        text, cue = _make_ticket(topic, priority, lang, rng, long)
        latent = {"written_topic": topic, "cue": cue or ""}
        if rng.random() < label_noise:
            topic = topics[int(rng.integers(len(topics)))]
        if rng.random() < label_noise:
            priority = PRIORITIES[int(rng.integers(3))]
        row = {"text": text, "topic": topic, "priority": priority, "language": lang}
        rows.append({**row, **latent} if latents else row)
    return pd.DataFrame(rows)


def bayes_proba(latents: pd.DataFrame, label_noise: float = 0.05) -> dict[str, np.ndarray]:
    """P(label | what the text was written from), from the generator's own probabilities.

    Columns of `latents`: written_topic, cue (see generate). Rows of the result follow
    TOPIC_WEIGHTS' and PRIORITIES' order. No classifier that reads only the text can do better in
    expectation: its argmax is the ceiling for accuracy on this data.
    """
    topics = list(TOPIC_WEIGHTS)
    written = latents["written_topic"].map(topics.index).to_numpy()
    topic = np.full((len(latents), len(topics)), label_noise / len(topics))
    topic[np.arange(len(latents)), written] += 1 - label_noise

    def cue_likelihood(cue: str, level: int) -> float:
        if not cue:
            return 1 - CUE_SHARE - OFF_CUE_SHARE
        gap = abs(PRIORITIES.index(cue) - level)
        edge = OFF_CUE_SHARE / 2 if level in (0, len(PRIORITIES) - 1) else 0.0
        return CUE_SHARE + edge if gap == 0 else OFF_CUE_SHARE / 2 if gap == 1 else 0.0

    priority = np.array(
        [
            [PRIORITY_BY_TOPIC[t][k] * cue_likelihood(c, k) for k in range(len(PRIORITIES))]
            for t, c in zip(latents["written_topic"], latents["cue"], strict=True)
        ]
    )
    priority /= priority.sum(axis=1, keepdims=True)
    priority = (1 - label_noise) * priority + label_noise / len(PRIORITIES)
    return {"topic": topic, "priority": priority}


def from_config(cfg, latents: bool = False) -> pd.DataFrame:
    """The synthetic export that `data.synthetic` and `seed` describe."""
    syn = cfg.data.synthetic
    return generate(
        int(syn.n_samples),
        int(cfg.seed),
        float(syn.ru_share),
        float(syn.label_noise),
        latents=latents,
        long_share=float(syn.get("long_share", 0.0)),
    )


LATENTS = ["written_topic", "cue"]


def latents_path(cfg) -> Path:
    """Where `ticketml data` keeps the latents of the synthetic export it wrote, row by row
    (data/raw/<name>.latents.parquet beside <name>.csv)."""
    return Path(cfg.paths.raw_dir) / f"{cfg.data.name}.latents.parquet"


def written_from(cfg) -> pd.DataFrame:
    """The synthetic data of `cfg` with its latents (see generate), indexed by the text as
    preprocessing cleans it (first of duplicates, as preprocessing keeps): the latents that
    `ticketml data` kept, else generated again."""
    from pyfunc.text import clean_text
    from ticketml.data.schema import transform_options

    options = transform_options(cfg)
    path = latents_path(cfg)
    raw = pd.read_parquet(path) if path.is_file() else from_config(cfg, latents=True)
    raw["text"] = raw["text"].map(lambda t: clean_text(t, options))
    return raw.drop_duplicates("text").set_index("text")


def ceiling_proba(cfg, texts: list[str], label_maps: dict) -> dict[str, np.ndarray] | None:
    """The Bayes posterior (`bayes_proba`) for processed texts of the synthetic data of `cfg`,
    columns in label-map order; None when a text is not one this generator wrote with this config
    (another export, or other synthetic settings)."""
    raw = written_from(cfg)
    rows = raw.index.get_indexer(texts)
    if len(rows) == 0 or (rows < 0).any():
        return None
    order = {"topic": list(TOPIC_WEIGHTS), "priority": list(PRIORITIES)}
    if any(set(label_maps[t]) != set(order[t]) for t in order):
        return None
    posterior = bayes_proba(raw.iloc[rows], float(cfg.data.synthetic.label_noise))
    return {
        t: p[:, [order[t].index(label) for label in label_maps[t]]] for t, p in posterior.items()
    }
