//! Release notes, rendered safely: a small markdown subset (headings, bullet lists, paragraphs,
//! `**bold**`, `` `code` ``) parsed into plain values that the view turns into elements with
//! text children. Nothing in the notes ever becomes HTML markup: a `<script>` in them is shown
//! as the characters `<script>`. Links are shown as their text (no `href`), so notes cannot
//! point people anywhere.

/// A run of text inside a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Bold(String),
    Code(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `#` to `######`; the level is clamped to 3..=6 under the page's own headings.
    Heading(u8, Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Paragraph(Vec<Inline>),
}

/// `**bold**`, `` `code` ``, and `[text](url)` shown as its text; anything unmatched is text.
pub fn inline(text: &str) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    let flush = |plain: &mut String, out: &mut Vec<Inline>| {
        if !plain.is_empty() {
            out.push(Inline::Text(std::mem::take(plain)));
        }
    };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("**") {
            if let Some(end) = after.find("**") {
                if end > 0 {
                    flush(&mut plain, &mut out);
                    out.push(Inline::Bold(after[..end].to_owned()));
                    rest = &after[end + 2..];
                    continue;
                }
            }
        }
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                flush(&mut plain, &mut out);
                out.push(Inline::Code(after[..end].to_owned()));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('[') {
            if let Some(close) = after.find("](") {
                if let Some(end) = after[close + 2..].find(')') {
                    plain.push_str(&after[..close]);
                    rest = &after[close + 2 + end + 1..];
                    continue;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            plain.push(c);
        }
        rest = chars.as_str();
    }
    flush(&mut plain, &mut out);
    out
}

/// Splits notes into blocks.
pub fn blocks(notes: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut list: Vec<Vec<Inline>> = Vec::new();
    fn end_paragraph(paragraph: &mut Vec<&str>, out: &mut Vec<Block>) {
        if !paragraph.is_empty() {
            out.push(Block::Paragraph(inline(&paragraph.join(" "))));
            paragraph.clear();
        }
    }
    fn end_list(list: &mut Vec<Vec<Inline>>, out: &mut Vec<Block>) {
        if !list.is_empty() {
            out.push(Block::List(std::mem::take(list)));
        }
    }
    for raw in notes.lines() {
        let line = raw.trim();
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if line.is_empty() {
            end_paragraph(&mut paragraph, &mut out);
            end_list(&mut list, &mut out);
        } else if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            end_paragraph(&mut paragraph, &mut out);
            end_list(&mut list, &mut out);
            let level = (hashes as u8 + 2).min(6);
            out.push(Block::Heading(level, inline(line[hashes..].trim())));
        } else if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            end_paragraph(&mut paragraph, &mut out);
            list.push(inline(item.trim()));
        } else {
            end_list(&mut list, &mut out);
            paragraph.push(line);
        }
    }
    end_paragraph(&mut paragraph, &mut out);
    end_list(&mut list, &mut out);
    out
}

/// `1.0 MiB`: a byte count for people. Integer arithmetic only: float formatting costs the
/// wasm bundle more than this function is worth.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let bytes = bytes.max(0) as u64;
    let mut unit = 0;
    let mut divisor = 1u64;
    while bytes / divisor >= 1024 && unit < UNITS.len() - 1 {
        divisor *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    // Tenths, rounded half up.
    let tenths = (bytes * 10 + divisor / 2) / divisor;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_notes_stays_text() {
        let parsed = blocks("<script>alert(1)</script> <b>hi</b>");

        assert_eq!(
            parsed,
            vec![Block::Paragraph(vec![Inline::Text(
                "<script>alert(1)</script> <b>hi</b>".into()
            )])]
        );
    }

    #[test]
    fn headings_lists_and_paragraphs() {
        let parsed = blocks(
            "## What changed\n\n- **Faster** sync\n* new `--dry-run` flag\n\nThanks to\neveryone.",
        );

        assert_eq!(
            parsed,
            vec![
                Block::Heading(4, vec![Inline::Text("What changed".into())]),
                Block::List(vec![
                    vec![Inline::Bold("Faster".into()), Inline::Text(" sync".into())],
                    vec![
                        Inline::Text("new ".into()),
                        Inline::Code("--dry-run".into()),
                        Inline::Text(" flag".into())
                    ],
                ]),
                Block::Paragraph(vec![Inline::Text("Thanks to everyone.".into())]),
            ]
        );
    }

    #[test]
    fn links_show_only_their_text_and_unclosed_marks_stay_literal() {
        assert_eq!(
            inline("see [the docs](javascript:void) **open `x"),
            vec![Inline::Text("see the docs **open `x".into())]
        );
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1_048_576), "1.0 MiB");
        assert_eq!(human_size(-3), "0 B");
    }
}
