//! The console's HTML: escaping, the page layout (one small stylesheet, no external assets),
//! and the pieces every page uses (status badges, times, tables).

use std::fmt::Write as _;

use landfall_api::Timestamp;

/// Text made safe for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment or query value, percent-encoded.
pub fn url(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `2026-12-04 18:33:20` (UTC), from the signing code's date formatting.
pub fn time(at: Option<Timestamp>) -> String {
    let Some(at) = at else { return "—".into() };
    // YYYYMMDDTHHMMSSZ
    let basic = landfall_sigv4::format_amz_date(at.millis().div_euclid(1000));
    format!(
        "{}-{}-{} {}:{}:{}",
        &basic[0..4],
        &basic[4..6],
        &basic[6..8],
        &basic[9..11],
        &basic[11..13],
        &basic[13..15]
    )
}

/// How long between two times: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration(start: Option<Timestamp>, end: Option<Timestamp>) -> String {
    let (Some(start), Some(end)) = (start, end) else { return String::new() };
    let millis = (end.millis() - start.millis()).max(0);
    match millis {
        0..1000 => format!("{millis} ms"),
        1000..60_000 => format!("{:.1} s", millis as f64 / 1000.0),
        _ => format!("{} min {:02} s", millis / 60_000, millis % 60_000 / 1000),
    }
}

/// A status as a badge: a symbol and the word, so colour is never the only cue.
pub fn badge(status: &str) -> String {
    let (symbol, class) = match status {
        "Succeeded" | "Success" | "OK" => ("✓", "good"),
        "Failed" | "ALARM" => ("✗", "bad"),
        "Stopped" | "Skipped" => ("■", "muted"),
        "InProgress" | "Baking" | "Ready" => ("●", "busy"),
        _ => ("○", "muted"),
    };
    format!("<span class=\"badge {class}\"><span aria-hidden=\"true\">{symbol}</span> {}</span>", esc(status))
}

/// The page around `body`: title, navigation, who is signed in, and the sign-out form.
pub struct Page<'a> {
    pub title: &'a str,
    /// The navigation entry to mark current.
    pub section: &'a str,
    /// The signed-in key and role, with the CSRF token for the sign-out form; none on the
    /// sign-in page.
    pub session: Option<(&'a str, &'a str, &'a str)>,
    pub body: String,
}

/// The console's one stylesheet, served as `/console/assets/console.css`.
pub const STYLE: &str = "
:root{--fg:#1b1f24;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--good:#1a7f37;--bad:#cf222e;--busy:#9a6700;--link:#0969da}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line)}
header strong{font-size:1.1rem}nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem}nav a{white-space:nowrap}
nav a[aria-current]{font-weight:700;text-decoration:underline}body{overflow-wrap:break-word}
ol.events{display:flex;flex-wrap:wrap;gap:.2rem 1.25rem;list-style:none;padding:0;margin:0}ol.events li{white-space:nowrap}
ol.events li.failed{white-space:normal;flex-basis:100%}pre.tail{max-height:12rem;margin:.25rem 0}
header form{margin-left:auto}main{padding:1rem;max-width:80rem}a{color:var(--link)}
a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #0969da;outline-offset:2px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600}.badge{white-space:nowrap;font-weight:600}.good{color:var(--good)}.bad{color:var(--bad)}.busy{color:var(--busy)}.muted{color:var(--muted)}
.counts{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;padding:0;list-style:none}.counts li{font-size:1.05rem}
button,input,select{font:inherit;padding:.3rem .6rem}button{cursor:pointer}.danger{color:#fff;background:var(--bad);border:1px solid var(--bad)}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0}.actions form{margin:0}
pre{background:#f6f8fa;border:1px solid var(--line);padding:.75rem;overflow:auto;max-height:70vh;white-space:pre-wrap;word-break:break-word}
.error{color:var(--bad);font-weight:600}.note{color:var(--muted)}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
@media (max-width:640px){h1{font-size:1.35rem}table.wide thead{display:none}table.wide tr{display:block;border-bottom:1px solid var(--line)}table.wide td{display:block;border:0;padding:.15rem .25rem}}
";

const SECTIONS: [(&str, &str); 4] = [
    ("applications", "Applications"),
    ("deployments", "Deployments"),
    ("instances", "Instances"),
    ("audit", "Audit log"),
];

pub fn render(page: Page<'_>) -> String {
    let mut html = String::with_capacity(page.body.len() + 4096);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Landfall</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>",
        esc(page.title)
    );
    html.push_str("<header><strong>Landfall</strong>");
    if let Some((key, role, csrf)) = page.session {
        html.push_str("<nav aria-label=\"Sections\">");
        for (section, label) in SECTIONS {
            let current = if section == page.section { " aria-current=\"page\"" } else { "" };
            let _ = write!(html, "<a href=\"/console/{section}\"{current}>{label}</a>");
        }
        let _ = write!(
            html,
            "</nav><form method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{}\"><span class=\"note\">{} ({})</span> <button>Sign out</button></form>",
            esc(csrf),
            esc(key),
            esc(role)
        );
    }
    let _ = write!(html, "</header><main id=\"main\"><h1>{}</h1>{}</main>", esc(page.title), page.body);
    html.push_str("</body></html>");
    html
}

/// A table: header cells, then rows of cells already in HTML.
pub fn table(class: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = format!("<table class=\"{class}\"><thead><tr>");
    for header in headers {
        let _ = write!(html, "<th scope=\"col\">{}</th>", esc(header));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for (index, cell) in row.iter().enumerate() {
            // Each cell says what it is on narrow screens, where the header row is hidden.
            let label = headers.get(index).map(|h| esc(h)).unwrap_or_default();
            let _ = write!(html, "<td data-label=\"{label}\">{cell}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_attributes() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(url("web 1/ä"), "web%201%2F%C3%A4");
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(time(Some(Timestamp(1_796_409_200_017))), "2026-12-04 18:33:20");
        assert_eq!(duration(Some(Timestamp(0)), Some(Timestamp(850))), "850 ms");
        assert_eq!(duration(Some(Timestamp(0)), Some(Timestamp(12_340))), "12.3 s");
        assert_eq!(duration(Some(Timestamp(0)), Some(Timestamp(245_000))), "4 min 05 s");
        assert!(badge("Failed").contains("✗") && badge("Failed").contains("Failed"));
    }
}
