//! Schedule expressions of scheduled rules, as EventBridge reads them, in
//! UTC: `rate(1 minute)`, `rate(5 minutes)`, `rate(2 hours)`,
//! `rate(1 day)`, and six-field cron
//! `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`
//! with `*`, `?`, `,`, `-`, `/`, `L`, `W` and `#`; one of day-of-month and
//! day-of-week is `?`; days of the week count 1 (SUN) to 7 (SAT).
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html>

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

/// `rate(<value> <unit>)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub every: std::time::Duration,
}

impl Rate {
    /// Reads what is between `rate(` and `)`.
    pub fn parse(inner: &str) -> Result<Rate, String> {
        let bad =
            |why: &str| format!("Parameter ScheduleExpression is not valid: rate({inner}): {why}");
        let (value, unit) = inner
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("write rate(<value> <unit>)"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| bad("the value is a positive whole number"))?;
        if n == 0 {
            return Err(bad("the value is a positive whole number"));
        }
        let seconds = match (unit.trim(), n) {
            ("minute", 1) | ("minutes", 2..) => 60,
            ("hour", 1) | ("hours", 2..) => 3600,
            ("day", 1) | ("days", 2..) => 86_400,
            ("minutes" | "hours" | "days", 1) => {
                return Err(bad(
                    "a value of 1 takes the singular unit (minute, hour, day)",
                ));
            }
            ("minute" | "hour" | "day", _) => {
                return Err(bad(
                    "a value over 1 takes the plural unit (minutes, hours, days)",
                ));
            }
            _ => return Err(bad("the unit is minute(s), hour(s) or day(s)")),
        };
        Ok(Rate {
            every: std::time::Duration::from_secs(n * seconds),
        })
    }
}

/// One field of a cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    /// `*` or `?`.
    Any,
    /// Allowed values.
    Set(Vec<u32>),
    /// Day of month `L`: the last day.
    LastDay,
    /// Day of month `<n>W`: the weekday nearest the `n`th.
    NearestWeekday(u32),
    /// Day of week `<d>L`: the last such day of the month.
    LastWeekday(u32),
    /// Day of week `<d>#<n>`: the `n`th such day of the month.
    NthWeekday(u32, u32),
}

/// `cron(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Field,
    hours: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
    year: Field,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Reads what is between `cron(` and `)`.
    pub fn parse(inner: &str) -> Result<Cron, String> {
        let bad = |why: String| {
            format!("Parameter ScheduleExpression is not valid: cron({inner}): {why}")
        };
        let parts: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = parts.as_slice() else {
            return Err(bad(format!(
                "six fields (minutes hours day-of-month month day-of-week year), not {}",
                parts.len()
            )));
        };
        if (*dom == "?") == (*dow == "?") {
            return Err(bad(
                "one of day-of-month and day-of-week must be `?`, and only one".to_owned(),
            ));
        }
        let field = |text: &str, name: &str, min: u32, max: u32, names: &[&str]| {
            parse_field(text, min, max, names).map_err(|why| bad(format!("{name} `{text}`: {why}")))
        };
        let day_of_month = match *dom {
            "L" => Field::LastDay,
            d if d.ends_with('W') => {
                let n: u32 = d[..d.len() - 1]
                    .parse()
                    .ok()
                    .filter(|n| (1..=31).contains(n))
                    .ok_or_else(|| bad(format!("day-of-month `{d}`: <1-31>W")))?;
                Field::NearestWeekday(n)
            }
            d => field(d, "day-of-month", 1, 31, &[])?,
        };
        let day_of_week = match *dow {
            d if d.len() > 1 && d.ends_with('L') => {
                let n = day_number(&d[..d.len() - 1])
                    .ok_or_else(|| bad(format!("day-of-week `{d}`: <1-7 or SUN-SAT>L")))?;
                Field::LastWeekday(n)
            }
            d if d.contains('#') => {
                let (day, nth) = d.split_once('#').unwrap_or_default();
                let day = day_number(day);
                let nth = nth.parse::<u32>().ok().filter(|n| (1..=5).contains(n));
                match (day, nth) {
                    (Some(day), Some(nth)) => Field::NthWeekday(day, nth),
                    _ => return Err(bad(format!("day-of-week `{d}`: <day>#<1-5>"))),
                }
            }
            d => field(d, "day-of-week", 1, 7, &DAYS)?,
        };
        Ok(Cron {
            minutes: field(minutes, "minutes", 0, 59, &[])?,
            hours: field(hours, "hours", 0, 23, &[])?,
            day_of_month,
            month: field(month, "month", 1, 12, &MONTHS)?,
            day_of_week,
            year: field(year, "year", 1970, 2199, &[])?,
        })
    }

    /// The first minute strictly after `after` the expression names, within
    /// ten years (`None` when there is none: a year in the past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut day = start.date_naive();
        let end = day + Duration::days(3660);
        while day <= end {
            if self.day_matches(day) {
                let first_minute = if day == start.date_naive() {
                    start.hour() * 60 + start.minute()
                } else {
                    0
                };
                for m in first_minute..24 * 60 {
                    let (h, min) = (m / 60, m % 60);
                    if matches_plain(&self.hours, h) && matches_plain(&self.minutes, min) {
                        return Utc
                            .with_ymd_and_hms(day.year(), day.month(), day.day(), h, min, 0)
                            .single();
                    }
                }
            }
            day += Duration::days(1);
        }
        None
    }

    fn day_matches(&self, day: NaiveDate) -> bool {
        let year_ok = u32::try_from(day.year()).is_ok_and(|y| matches_plain(&self.year, y));
        if !year_ok || !matches_plain(&self.month, day.month()) {
            return false;
        }
        let last = last_day_of_month(day);
        // 1 = SUN ... 7 = SAT.
        let weekday = day.weekday().num_days_from_sunday() + 1;
        let dom_ok = match &self.day_of_month {
            Field::LastDay => day.day() == last,
            Field::NearestWeekday(n) => nearest_weekday(day, *n) == day.day(),
            f => matches_plain(f, day.day()),
        };
        let dow_ok = match &self.day_of_week {
            Field::LastWeekday(d) => weekday == *d && day.day() + 7 > last,
            Field::NthWeekday(d, nth) => weekday == *d && (day.day() - 1) / 7 + 1 == *nth,
            f => matches_plain(f, weekday),
        };
        dom_ok && dow_ok
    }
}

fn matches_plain(field: &Field, value: u32) -> bool {
    match field {
        Field::Any => true,
        Field::Set(values) => values.contains(&value),
        _ => false,
    }
}

fn day_number(text: &str) -> Option<u32> {
    if let Some(i) = DAYS.iter().position(|d| d.eq_ignore_ascii_case(text)) {
        return u32::try_from(i + 1).ok();
    }
    text.parse().ok().filter(|n| (1..=7).contains(n))
}

fn last_day_of_month(day: NaiveDate) -> u32 {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// The day of `day`'s month that `<n>W` names: the weekday nearest the
/// `n`th, without leaving the month.
fn nearest_weekday(day: NaiveDate, n: u32) -> u32 {
    let last = last_day_of_month(day);
    let n = n.min(last);
    let Some(target) = day.with_day(n) else {
        return 0;
    };
    match target.weekday().num_days_from_sunday() {
        // Saturday: Friday, or Monday when the 1st is a Saturday.
        6 if n == 1 => n + 2,
        6 => n - 1,
        // Sunday: Monday, or Friday when it is the month's last day.
        0 if n == last => n - 2,
        0 => n + 1,
        _ => n,
    }
}

fn parse_field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<Field, String> {
    if text == "*" || text == "?" {
        return Ok(Field::Any);
    }
    let value = |t: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return u32::try_from(i).map(|i| i + min).map_err(|e| e.to_string());
        }
        t.parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| format!("`{t}` is not in {min}-{max}"))
    };
    let mut values = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("the increment `{s}` is a positive number"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        if from > to {
            return Err(format!("the range {from}-{to} runs backwards"));
        }
        values.extend((from..=to).step_by(step as usize));
    }
    Ok(Field::Set(values))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::{Cron, Rate};

    #[test]
    fn rates_take_aws_units() {
        assert_eq!(Rate::parse("1 minute").expect("rate").every.as_secs(), 60);
        assert_eq!(Rate::parse("5 minutes").expect("rate").every.as_secs(), 300);
        assert_eq!(
            Rate::parse("2 days").expect("rate").every.as_secs(),
            172_800
        );
        assert!(Rate::parse("1 minutes").is_err());
        assert!(Rate::parse("5 minute").is_err());
        assert!(Rate::parse("0 minutes").is_err());
        assert!(Rate::parse("5 seconds").is_err());
    }

    #[test]
    fn cron_fires_at_the_minutes_it_names() {
        // AWS's examples: 10:15 UTC every day; every 5 minutes on weekdays.
        let c = Cron::parse("15 10 * * ? *").expect("cron");
        let t = Utc
            .with_ymd_and_hms(2026, 12, 5, 10, 15, 0)
            .single()
            .expect("time");
        assert_eq!(
            c.next_after(t),
            Utc.with_ymd_and_hms(2026, 12, 6, 10, 15, 0).single()
        );
        let c = Cron::parse("0/5 8-17 ? * MON-FRI *").expect("cron");
        // 2026-12-05 is a Saturday: the next is Monday 08:00.
        assert_eq!(
            c.next_after(t),
            Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).single()
        );
        // The last day of the month; the first Monday (2#1).
        let c = Cron::parse("0 12 L * ? *").expect("cron");
        assert_eq!(
            c.next_after(t),
            Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0).single()
        );
        // December 2026 starts on a Tuesday: its first Monday is the 7th,
        // January 2027's the 4th.
        let c = Cron::parse("0 9 ? * 2#1 *").expect("cron");
        assert_eq!(
            c.next_after(t),
            Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single()
        );
        let after_it = Utc
            .with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            c.next_after(after_it),
            Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).single()
        );
        assert_eq!(
            Cron::parse("0 9 * * ? 2020").expect("cron").next_after(t),
            None
        );
    }

    #[test]
    fn bad_cron_is_refused() {
        assert!(Cron::parse("0 9 * * *").is_err());
        assert!(Cron::parse("0 9 * * * *").is_err(), "both days given");
        assert!(Cron::parse("0 9 ? * ? *").is_err(), "neither day given");
        assert!(Cron::parse("60 9 * * ? *").is_err());
        assert!(Cron::parse("0 9 ? * 8 *").is_err());
    }
}
