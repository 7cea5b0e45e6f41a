//! Where a command's output goes, and how it looks there.

use std::io::{IsTerminal as _, Write as _};

/// How a command prints: for people (`terminal` when standard output is one, so it may redraw
/// and use colour) or one JSON document for scripts.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub terminal: bool,
    pub color: bool,
}

impl Output {
    /// Text or JSON, the rest told from standard output and `NO_COLOR`.
    pub fn detect(json: bool) -> Output {
        let terminal = !json && std::io::stdout().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Output { json, terminal, color }
    }

    /// Prints one JSON document.
    /// What a delete command prints: `{"<field>": name, "deleted": true}`, or "deleted <what> <name>".
    pub fn deleted(&self, field: &str, what: &str, name: &str) -> anyhow::Result<()> {
        if self.json {
            return self.json(&serde_json::json!({field: name, "deleted": true}));
        }
        println!("deleted {what} {name}");
        Ok(())
    }

    pub fn json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        // As an io::Error, so a closed pipe is recognised as one.
        serde_json::to_writer_pretty(&mut stdout, value).map_err(std::io::Error::from)?;
        writeln!(stdout)?;
        Ok(())
    }

    /// `text` in `style` when colour is on.
    pub(crate) fn paint(&self, style: Style, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match style {
            Style::Good => "32",
            Style::Bad => "31",
            Style::Busy => "33",
            Style::Dim => "2",
            Style::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    Good,
    Bad,
    Busy,
    Dim,
    Bold,
}

/// A fixed-width progress bar: `[#####-----]`, `done` of `total`.
pub(crate) fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = if total == 0 { 0 } else { (done * width).div_ceil(total).min(width) };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// Seconds, as people read them: `0.4s`, `12.0s`, `3m05s`.
pub(crate) fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = seconds as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Rows as columns padded to the widest cell, two spaces apart (the last column unpadded).
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|row| row.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_durations_and_tables() {
        assert_eq!(bar(0, 5, 10), "[----------]");
        assert_eq!(bar(2, 5, 10), "[####------]");
        assert_eq!(bar(5, 5, 10), "[##########]");
        assert_eq!(bar(0, 0, 4), "[----]");
        assert_eq!(duration(0.42), "0.4s");
        assert_eq!(duration(185.0), "3m05s");
        let rows = vec![vec!["NAME".into(), "STATUS".into()], vec!["web-10".into(), "Succeeded".into()]];
        assert_eq!(table(&rows), "NAME    STATUS\nweb-10  Succeeded\n");
    }
}
