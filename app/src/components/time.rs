//! Times as people read them: "3 min ago", "in 2 h", with the exact time on hover, in a
//! `<time datetime=… title=…>`.
//!
//! Every relative time on a page counts from one "now" ([`Now`]). The server takes it once per
//! page, draws the page with it and writes it into the page (`<meta name="hangar-now">`); the
//! browser hydrates with that same value, so both draw the same words (a clock of its own
//! would make hydration find other text), and only once the whole page is hydrated switches to
//! its own clock, refreshed every minute.

use leptos::prelude::*;

use crate::time::Timestamp;

/// The `<meta>` that carries the server's "now" to the browser.
pub const NOW_META: &str = "hangar-now";

/// How often relative times are drawn again in the browser.
#[cfg(feature = "hydrate")]
const REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// The instant (milliseconds since the Unix epoch) every relative time of the page counts from.
#[derive(Clone, Copy)]
pub struct Now(RwSignal<i64>);

/// The server's "now" for the page being rendered, taken once by [`crate::shell`].
#[cfg(feature = "ssr")]
#[derive(Clone, Copy)]
struct PageNow(i64);

impl Now {
    /// Takes the page's "now" on the server, for [`Now::provide`] and the `<meta>` that
    /// carries it to the browser; returns it in milliseconds.
    pub fn capture() -> i64 {
        let now = clock_millis();
        #[cfg(feature = "ssr")]
        provide_context(PageNow(now));
        now
    }

    /// Shares the page's "now" with every part of the page: the captured one on the server,
    /// the server's (read from the page) while the browser hydrates, then the browser's,
    /// refreshed every minute.
    pub fn provide() -> Self {
        let now = Now(RwSignal::new(initial_millis()));
        provide_context(now);
        #[cfg(feature = "hydrate")]
        {
            let signal = now.0;
            crate::when_hydrated(move || {
                signal.set(clock_millis());
                let _ = set_interval_with_handle(
                    move || {
                        signal.try_set(clock_millis());
                    },
                    REFRESH,
                );
            });
        }
        now
    }

    /// The page's "now", or the clock's where no page provides one.
    fn current() -> i64 {
        match use_context::<Now>() {
            Some(Now(signal)) => signal.get(),
            None => clock_millis(),
        }
    }
}

/// This side's clock, in milliseconds since the Unix epoch.
fn clock_millis() -> i64 {
    #[cfg(feature = "ssr")]
    return chrono::Utc::now().timestamp_millis();
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    return js_sys::Date::now() as i64;
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    0
}

/// The first value of the page's "now": the server's, on both sides of the hydration.
fn initial_millis() -> i64 {
    #[cfg(feature = "ssr")]
    if let Some(PageNow(now)) = use_context::<PageNow>() {
        return now;
    }
    #[cfg(feature = "hydrate")]
    if let Some(now) = document()
        .query_selector(&format!("meta[name=\"{NOW_META}\"]"))
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .and_then(|content| content.parse().ok())
    {
        return now;
    }
    clock_millis()
}

/// A time as "3 min ago" (or "in 2 h"), the exact time on hover; `none` when there is none.
#[component]
pub fn RelativeTime(
    #[prop(into)] at: Option<Timestamp>,
    /// What to show without a time.
    #[prop(default = "never")]
    none: &'static str,
) -> impl IntoView {
    let Some(at) = at else {
        return view! { <span class="no-time">{none}</span> }.into_any();
    };
    let millis = parse_millis(at.as_str());
    let raw = at.as_str().to_owned();
    let text = move || match millis {
        Some(millis) => relative_text(millis, Now::current()),
        None => raw.clone(),
    };
    view! { <time datetime=at.as_str().to_owned() title=exact_text(&at)>{text}</time> }.into_any()
}

/// The exact time for a title: `2026-12-06 21:33:08 UTC`.
pub fn exact_text(at: &Timestamp) -> String {
    let text = at.as_str();
    match (text.get(..19), text.ends_with('Z')) {
        (Some(seconds), true) => format!("{} UTC", seconds.replacen('T', " ", 1)),
        _ => text.to_owned(),
    }
}

/// How long ago (or in how long) `at` is from `now`, both in milliseconds: "just now",
/// "3 min ago", "in 2 h", "5 days ago", "in 3 months", "2 years ago". Floors, so that the
/// words change only when a whole unit has passed.
pub fn relative_text(at: i64, now: i64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let past = now >= at;
    let seconds = now.abs_diff(at) / 1000;
    let (count, one, many) = if seconds < MINUTE {
        // Less than a minute either way, a clock a little ahead included.
        return "just now".into();
    } else if seconds < HOUR {
        (seconds / MINUTE, "min", "min")
    } else if seconds < DAY {
        (seconds / HOUR, "h", "h")
    } else if seconds < 60 * DAY {
        (seconds / DAY, "day", "days")
    } else if seconds < 730 * DAY {
        (seconds / (30 * DAY), "month", "months")
    } else {
        (seconds / (365 * DAY), "year", "years")
    };
    let unit = if count == 1 { one } else { many };
    if past {
        format!("{count} {unit} ago")
    } else {
        format!("in {count} {unit}")
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (`2026-12-06T21:33:08.522Z`,
/// `…+02:00`), read by hand: no date crate in the browser's code for one format.
pub fn parse_millis(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = 19;
    let mut millis = 0;
    if bytes.get(rest) == Some(&b'.') {
        let digits = bytes[rest + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, padded.
        let fraction = &text[rest + 1..rest + 1 + digits.min(3)];
        millis = fraction.parse::<i64>().ok()? * 10_i64.pow(3 - fraction.len() as u32);
        rest += 1 + digits;
    }
    let offset_minutes = match text.get(rest..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && zone.as_bytes()[3] == b':' => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (number(rest + 1..rest + 3)? * 60 + number(rest + 4..rest + 6)?)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    #[test]
    fn parses_the_wire_format_and_offsets() {
        assert_eq!(parse_millis("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_millis("1970-01-01T00:00:01Z"), Some(1000));
        // `date -d 2026-12-06T21:33:08Z +%s` = 1796592788
        assert_eq!(
            parse_millis("2026-12-06T21:33:08.522Z"),
            Some(1_796_592_788_522)
        );
        assert_eq!(
            parse_millis("2026-12-06T23:33:08.5+02:00"),
            Some(1_796_592_788_500)
        );
        assert_eq!(parse_millis("2000-02-29T12:00:00Z"), Some(951_825_600_000));
        assert_eq!(parse_millis("2026-12-06"), None);
        assert_eq!(parse_millis("2026-13-06T21:33:08Z"), None);
        assert_eq!(parse_millis("2026-12-06T21:33:08"), None);
        assert_eq!(parse_millis("not a time at all, no"), None);
    }

    #[test]
    fn relative_words() {
        let now = 1_796_592_788_522;
        assert_eq!(relative_text(now, now), "just now");
        assert_eq!(relative_text(now + 30_000, now), "just now");
        assert_eq!(relative_text(now - 59_999, now), "just now");
        assert_eq!(relative_text(now - MIN, now), "1 min ago");
        assert_eq!(relative_text(now - 3 * MIN - 59_000, now), "3 min ago");
        assert_eq!(relative_text(now + 2 * HOUR + 5 * MIN, now), "in 2 h");
        assert_eq!(relative_text(now - DAY, now), "1 day ago");
        assert_eq!(relative_text(now + 5 * DAY, now), "in 5 days");
        assert_eq!(relative_text(now - 90 * DAY, now), "3 months ago");
        assert_eq!(relative_text(now - 800 * DAY, now), "2 years ago");
    }

    #[test]
    fn exact_time_in_utc() -> Result<(), serde_json::Error> {
        let at: Timestamp = serde_json::from_str("\"2026-12-06T21:33:08.522Z\"")?;
        assert_eq!(exact_text(&at), "2026-12-06 21:33:08 UTC");
        Ok(())
    }
}
