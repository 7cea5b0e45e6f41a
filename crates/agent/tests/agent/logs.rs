//! The failure log tail, the log files' formats, and the chunks streamed to the server.

use std::fs;
use std::time::Duration;

use landfall_agent::logs::{
    DeploymentsLog, EventLog, LogTail, SCRIPTS_LOG_MAX_BYTES, TAIL_CHARS, chunks, stream, stream_to_server,
};
use landfall_commands::LogChunk;

use crate::support::{FakeService, TempDir};

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

#[tokio::test]
async fn output_faster_than_the_server_takes_it_is_left_out_with_a_notice_and_the_end_kept() {
    let (sender, receiver) = stream();
    let mut log = EventLog::new("d-1", None, Some(sender));
    // 50 MB while nothing is sent: the newest part waits, the rest is counted.
    log.line("[stdout]the first line");
    let line = format!("[stdout]{}", "A".repeat(999));
    for _ in 0..50_000 {
        log.line(&line);
    }
    log.line("[stdout]the last line");
    drop(log);
    let service = FakeService::new();
    stream_to_server(&service, "c-1", receiver, Duration::from_millis(10)).await;
    let text: String = service.streamed("c-1").into_iter().map(|chunk| chunk.text).collect();
    assert!(text.len() < 1024 * 1024, "{} bytes were held and sent", text.len());
    let kept = text.lines().filter(|l| l.starts_with("[stdout]A")).count();
    assert!(kept > 100, "{kept}");
    let notices: Vec<&str> = text.lines().filter(|l| l.starts_with("[landfall]")).collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    // The start is kept (a head of 64 KiB), then the notice where the output was left out.
    assert!(text.starts_with("[stdout]the first line\n[stdout]AAA"), "{}", &text[..100]);
    let head = text.find("[landfall] ").unwrap();
    assert!((64 * 1024..64 * 1024 + 2000).contains(&head), "{head}");
    let left_out: usize = notices[0].split(' ').nth(1).unwrap().parse().unwrap();
    // Every byte is either sent or counted, and the end is there.
    assert_eq!(left_out + kept * (line.len() + 1), 50_000 * (line.len() + 1));
    assert!(text.ends_with("[stdout]the last line\n"), "{}", &text[text.len() - 200..]);
}

#[test]
fn scripts_log_stops_at_its_limit_and_says_so() {
    let dir = TempDir::new("logs");
    let scripts_log = dir.join("d-1/logs/scripts.log");
    // Nearly full already, from earlier events of the deployment.
    fs::create_dir_all(scripts_log.parent().unwrap()).unwrap();
    fs::write(&scripts_log, vec![b'.'; (SCRIPTS_LOG_MAX_BYTES - 60) as usize]).unwrap();
    let mut log = EventLog::new("d-1", None, None);
    log.write_scripts_log_to(&scripts_log);
    log.line("[stdout]fits");
    for _ in 0..1000 {
        log.line("[stdout]does not fit");
    }
    let size = fs::metadata(&scripts_log).unwrap().len();
    assert!(size < SCRIPTS_LOG_MAX_BYTES + 1024, "{size}");
    let end = fs::read(&scripts_log).unwrap();
    let end = String::from_utf8_lossy(&end[end.len() - 300..]).into_owned();
    assert!(end.contains("[stdout]fits\n"), "{end}");
    assert!(end.trim_end().ends_with("is in the deployments log and on the server"), "{end}");
    assert!(!end.contains("does not fit"));
    // The tail still has the newest lines.
    assert!(log.tail().ends_with("[stdout]does not fit\n"));
}
