//! `hato spam train|eval`: offline, reproducible, with the split by the MD5 in file names.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hato");

fn hato(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run hato");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 32-hex name: `i` spread over the digits, the first digit chosen (0–b train, c–f test).
fn md5_name(kind: &str, i: usize, first: char) -> String {
    format!("{kind}.{i:05}.{first}{:031x}.eml", i * 7919 + 13)
}

fn write_corpus(root: &Path) {
    let ham = root.join("ham");
    let spam = root.join("spam");
    std::fs::create_dir_all(&ham).unwrap();
    std::fs::create_dir_all(&spam).unwrap();
    let topics = ["build", "patch", "meeting", "release", "kernel", "review"];
    let offers = ["mortgage", "casino", "pills", "lottery", "loans", "watches"];
    for i in 0..40 {
        let first = if i % 4 == 0 { 'd' } else { '3' };
        let t = topics[i % topics.len()];
        std::fs::write(
            ham.join(md5_name("ham", i, first)),
            format!(
                "From hato@example Mon Sep  2 10:00:00 2002\n\
                 From: Dev {i} <dev{i}@example.org>\nTo: list@example.org\n\
                 Subject: Re: the {t} for tomorrow\nDate: Tue, 3 Sep 2002 11:00:00 +0100\n\
                 Message-ID: <{i}.x@example.org>\n\n> about the {t}\n\nI think the {t} \
                 looks fine, thanks for the review of the {t}.\n-- \nDev\n"
            ),
        )
        .unwrap();
        let o = offers[i % offers.len()];
        std::fs::write(
            spam.join(md5_name("spam", i, first)),
            format!(
                "From: deals@offers{i}.biz\nSubject: CHEAP {o} NOW!!!\nContent-Type: text/html\n\n\
                 <html><body><p>Best {o} deal, click here, limited time, act now!</p>\
                 <a href=\"http://198.51.100.{i}/buy\">www.bank.example</a>\
                 <p>To be removed <a href=\"http://x.example.biz/unsubscribe\">click</a></p></body></html>\n"
            ),
        )
        .unwrap();
    }
    // A file without an MD5 in its name: only in --split all.
    std::fs::write(ham.join("notes.eml"), "Subject: notes\n\nplain notes\n").unwrap();
}

#[test]
fn spam_train_is_reproducible_and_eval_reports_the_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_corpus(root);
    // No settings file is read: a broken one does not stop the offline commands.
    std::fs::write(root.join("hato.toml"), "this is = not [ toml").unwrap();
    let train = |out: &str| {
        hato(
            root,
            &[
                "spam", "train", "--ham", "ham", "--spam", "spam", "--split", "train", "--out", out,
            ],
        )
    };
    let (ok, stdout, stderr) = train("a.bin");
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("trained on 30 ham and 30 spam"),
        "the train split is the files whose MD5 starts 0-b: {stdout}"
    );
    let (ok, _, stderr) = train("b.bin");
    assert!(ok, "{stderr}");
    let a = std::fs::read(root.join("a.bin")).unwrap();
    let b = std::fs::read(root.join("b.bin")).unwrap();
    assert_eq!(a, b, "the same input gives the same model, byte for byte");

    let (ok, stdout, stderr) = hato(
        root,
        &[
            "spam", "eval", "--ham", "ham", "--spam", "spam", "--split", "test", "--model",
            "a.bin", "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["ham"], 10);
    assert_eq!(v["spam"], 10);
    for key in [
        "spam_recall",
        "ham_false_positive_rate",
        "auc",
        "messages_per_second",
    ] {
        let x = v[key].as_f64().unwrap_or(-1.0);
        assert!(x >= 0.0, "{key}: {v}");
    }
    assert!(v["spam_recall"].as_f64().unwrap() <= 1.0);
    assert!(v["auc"].as_f64().unwrap() > 0.9, "{v}");

    // Text output and --online.
    let (ok, stdout, _) = hato(
        root,
        &[
            "spam", "eval", "--ham", "ham", "--spam", "spam", "--model", "a.bin", "--online",
        ],
    );
    assert!(ok);
    assert!(
        stdout.contains("messages: 81 (41 ham, 40 spam)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("spam recall:") && stdout.contains("ROC AUC:"),
        "{stdout}"
    );

    // Bad input: a clear error, exit status 1.
    std::fs::write(root.join("bad.bin"), b"HATOSPAM garbage").unwrap();
    let (ok, _, stderr) = hato(
        root,
        &[
            "spam", "eval", "--ham", "ham", "--spam", "spam", "--model", "bad.bin",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("bad.bin"), "{stderr}");
    let (ok, _, stderr) = hato(
        root,
        &["spam", "eval", "--ham", "nowhere", "--spam", "spam"],
    );
    assert!(!ok);
    assert!(stderr.contains("cannot read nowhere"), "{stderr}");
}

#[test]
fn the_shipped_model_is_what_eval_uses_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    write_corpus(tmp.path());
    let (ok, stdout, stderr) = hato(
        tmp.path(),
        &["spam", "eval", "--ham", "ham", "--spam", "spam", "--json"],
    );
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["messages"], 81);
}
