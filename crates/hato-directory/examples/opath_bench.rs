//! Times dynamic-group expansion: one filter evaluated over 100,000
//! in-memory recipients, 50 times, reporting the median and p99.
//!
//! Run with `cargo run --release -p hato-directory --example opath_bench`.
//! (Timing belongs here rather than in a test: tests must not depend on
//! the speed of the machine.)

use std::hint::black_box;
use std::time::{Duration, Instant};

use hato_directory::opath::{FilterSubject, Property, parse};

const SUBJECTS: usize = 100_000;
const REPETITIONS: usize = 50;

/// A directory entry as a server would keep it in memory.
struct Recipient {
    alias: String,
    display_name: String,
    department: String,
    office: String,
    city: String,
    title: String,
    company: String,
    custom1: String,
    recipient_type: &'static str,
}

impl FilterSubject for Recipient {
    fn property(&self, p: Property) -> Option<&str> {
        match p {
            Property::Alias => Some(&self.alias),
            Property::DisplayName => Some(&self.display_name),
            Property::Department => Some(&self.department),
            Property::Office => Some(&self.office),
            Property::City => Some(&self.city),
            Property::Title => Some(&self.title),
            Property::Company => Some(&self.company),
            Property::CustomAttribute(1) => Some(&self.custom1),
            Property::RecipientType | Property::RecipientTypeDetails => Some(self.recipient_type),
            _ => None,
        }
    }
}

fn directory() -> Vec<Recipient> {
    const DEPARTMENTS: [&str; 10] = [
        "Sales",
        "Engineering",
        "Marketing",
        "Finance",
        "Legal",
        "Support",
        "SALES",
        "Human Resources",
        "Operations",
        "Research",
    ];
    const OFFICES: [&str; 12] = [
        "Tokyo HQ",
        "Tokyo Annex",
        "Osaka",
        "Nagoya",
        "London",
        "New York",
        "Zürich",
        "tokyo lab",
        "Paris",
        "Berlin",
        "Singapore",
        "Sydney",
    ];
    const TITLES: [&str; 5] = ["Engineer", "Manager", "Intern", "Director", "Analyst"];
    const TYPES: [&str; 4] = ["UserMailbox", "UserMailbox", "MailUser", "MailContact"];
    // A fixed linear congruential sequence: the same directory every run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high bits are the well-mixed ones.
        (seed >> 33) as usize % n
    };
    (0..SUBJECTS)
        .map(|i| Recipient {
            alias: format!("user{i}"),
            display_name: format!("User {i}"),
            department: DEPARTMENTS[next(DEPARTMENTS.len())].to_owned(),
            office: OFFICES[next(OFFICES.len())].to_owned(),
            city: OFFICES[next(OFFICES.len())].to_owned(),
            title: TITLES[next(TITLES.len())].to_owned(),
            company: "Contoso".to_owned(),
            custom1: next(100).to_string(),
            recipient_type: TYPES[next(TYPES.len())],
        })
        .collect()
}

fn main() {
    let recipients = directory();
    let filters = [
        "(Department -eq 'Sales') -and (Office -like 'Tokyo*')",
        "(RecipientTypeDetails -eq 'UserMailbox') -and (Company -eq 'Contoso') \
         -and (Title -like '*engineer*') -and -not (CustomAttribute1 -lt 50)",
        "City -like '*rich' -or Office -eq 'zürich'",
    ];
    println!(
        "{SUBJECTS} recipients, {REPETITIONS} repetitions per filter (release build expected)"
    );
    for text in filters {
        let filter = match parse(text) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{text}: {e}");
                std::process::exit(1);
            }
        };
        let mut times: Vec<Duration> = Vec::with_capacity(REPETITIONS);
        let mut members = 0;
        for _ in 0..REPETITIONS {
            let start = Instant::now();
            members = black_box(&recipients)
                .iter()
                .filter(|r| black_box(&filter).matches(*r))
                .count();
            times.push(start.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let median = ms(times[REPETITIONS / 2]);
        // Nearest-rank p99: with 50 samples, the slowest.
        let p99 = ms(times[(REPETITIONS * 99).div_ceil(100) - 1]);
        println!("{text}\n  members {members}, median {median:.3} ms, p99 {p99:.3} ms");
    }
}
