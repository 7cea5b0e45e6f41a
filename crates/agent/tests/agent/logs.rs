//! The failure log tail, the log files' formats, and the chunks streamed to the server.

use std::fs;

use landfall_agent::logs::{DeploymentsLog, EventLog, LogTail, TAIL_CHARS, chunks};
use landfall_commands::LogChunk;

use crate::support::TempDir;

#[test]
fn the_tail_keeps_the_newest_whole_lines_under_the_limit() {
    let mut tail = LogTail::default();
    for n in 0..200 {
        tail.push(&format!("[stdout]line {n:03} {}", "x".repeat(20)));
    }
    let text = tail.text();
    assert!(text.chars().count() < TAIL_CHARS, "{}", text.len());
    // Whole lines only, the newest last, and as many as fit.
    assert!(text.ends_with("[stdout]line 199 xxxxxxxxxxxxxxxxxxxx\n"));
    assert!(text.starts_with("[stdout]line "));
    let line_len = "[stdout]line 000 xxxxxxxxxxxxxxxxxxxx\n".len();
    assert_eq!(text.lines().count(), (TAIL_CHARS - 1) / line_len);
}

#[test]
fn one_line_longer_than_the_limit_is_cut_not_dropped() {
    let mut tail = LogTail::default();
    tail.push("[stdout]short");
    tail.push(&format!("[stdout]{}", "y".repeat(5000)));
    let text = tail.text();
    assert!(!text.is_empty());
    assert!(text.chars().count() < TAIL_CHARS, "{}", text.chars().count());
    assert!(text.starts_with("[stdout]yyyy") && text.ends_with("...\n"), "{text}");
    // The next line makes room by dropping the cut one.
    tail.push("[stderr]after");
    assert!(tail.text().ends_with("[stderr]after\n"));
    assert!(tail.text().chars().count() < TAIL_CHARS);
}

#[test]
fn an_exact_fit_is_still_under_the_limit() {
    let mut tail = LogTail::default();
    // 2047 characters with its newline: the most a tail may hold.
    tail.push(&"z".repeat(TAIL_CHARS - 2));
    assert_eq!(tail.text().chars().count(), TAIL_CHARS - 1);
    assert!(!tail.text().contains("..."));
    let mut tail = LogTail::default();
    tail.push(&"z".repeat(TAIL_CHARS - 1));
    assert!(tail.text().chars().count() < TAIL_CHARS);
    assert!(tail.text().ends_with("...\n"));
}

#[test]
fn chunks_fit_the_payload_and_keep_everything() {
    let mut text = String::new();
    for n in 0..3000 {
        text.push_str(&format!("[stdout]line {n} with \"quotes\" and \\ and \t tab\n"));
    }
    text.push_str(&format!("[stdout]{}\n", "é".repeat(20_000)));
    text.push_str("[stderr]\u{1}control\n");
    let pieces = chunks(&text);
    assert!(pieces.len() > 3);
    for (sequence, piece) in pieces.iter().enumerate() {
        let payload =
            serde_json::to_string(&LogChunk { sequence: u64::MAX - sequence as u64, text: piece.clone() }).unwrap();
        assert!(payload.chars().count() <= 8192, "chunk {sequence}: {}", payload.chars().count());
    }
    assert_eq!(pieces.concat(), text);
    // Cut between lines whenever a line fits.
    assert!(pieces[0].ends_with('\n'));
}

#[test]
fn log_files_have_the_official_formats() {
    let dir = TempDir::new("logs");
    let scripts_log = dir.join("d-1/logs/scripts.log");
    let deployments_log = dir.join("deployment-logs/codedeploy-agent-deployments.log");
    let mut log = EventLog::new("d-1", Some(DeploymentsLog::new(deployments_log.clone())), None);
    log.write_scripts_log_to(&scripts_log);
    log.line("LifecycleEvent - ApplicationStart");
    log.line("[stdout]hello\n");
    let scripts = fs::read_to_string(&scripts_log).unwrap();
    let lines: Vec<&str> = scripts.lines().collect();
    assert_eq!(lines.len(), 2);
    // YYYY-MM-DD HH:MM:SS [stdout]hello
    let (stamp, rest) = lines[1].split_at(19);
    assert_eq!(rest, " [stdout]hello");
    assert!(is_stamp(stamp), "{stamp}");
    assert!(lines[0].ends_with(" LifecycleEvent - ApplicationStart"));
    let combined = fs::read_to_string(&deployments_log).unwrap();
    let last = combined.lines().last().unwrap();
    // [YYYY-MM-DD HH:MM:SS.mmm] [d-1][stdout]hello
    assert!(last.starts_with('[') && is_stamp(&last[1..20]) && &last[20..21] == ".", "{last}");
    assert_eq!(&last[24..], "] [d-1][stdout]hello");
    assert_eq!(log.tail(), "LifecycleEvent - ApplicationStart\n[stdout]hello\n");
}

fn is_stamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 19
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
}
