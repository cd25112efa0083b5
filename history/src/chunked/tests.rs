use super::*;
use crate::jsonl::Reader;
use proptest::prelude::*;

/// What the one-thread reader makes of `text`: ops, then the error or the truncation.
fn sequential(text: &str) -> (Vec<Op>, Result<bool, String>) {
    let mut r = Reader::new(text.as_bytes(), "h.jsonl");
    let mut ops = Vec::new();
    for op in r.by_ref() {
        match op {
            Ok(op) => ops.push(op),
            Err(e) => return (ops, Err(e.to_string())),
        }
    }
    let truncated = r.truncated();
    (ops, Ok(truncated))
}

fn chunked(text: &str, workers: usize, block: usize) -> (Vec<Op>, Result<bool, String>) {
    let mut ops = Vec::new();
    let r = stream(text.as_bytes(), "h.jsonl", workers, block, |op| {
        ops.push(op);
        ControlFlow::Continue(())
    });
    (ops, r.map(|i| i.truncated).map_err(|e| e.to_string()))
}

fn line(index: Option<u64>, process: u64, kind: &str, value: &str) -> String {
    let index = index.map(|i| format!("\"index\":{i},")).unwrap_or_default();
    format!(
        "{{{index}\"process\":{process},\"type\":\"{kind}\",\"f\":\"add\",\"value\":{value}}}\n"
    )
}

fn history(n: u64) -> String {
    let mut text = String::new();
    for i in 0..n {
        text += &line(Some(2 * i), i % 7, "invoke", &i.to_string());
        text += &line(Some(2 * i + 1), i % 7, "ok", &i.to_string());
    }
    text
}

#[test]
fn keeps_file_order_across_blocks_and_workers() {
    let text = history(500);
    let (want, end) = sequential(&text);
    assert_eq!(end, Ok(false));
    for (workers, block) in [(1, 64), (2, 1), (2, 100), (3, 333), (4, 1 << 20)] {
        let (got, end) = chunked(&text, workers, block);
        assert_eq!(end, Ok(false));
        assert_eq!(got, want, "{workers} workers, {block}-byte blocks");
    }
}

#[test]
fn a_line_longer_than_a_block_is_read_whole() {
    let big: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    let text =
        line(None, 1, "invoke", "null") + &line(None, 1, "ok", &format!("[{}]", big.join(",")));
    let (got, end) = chunked(&text, 2, 100);
    assert_eq!(end, Ok(false));
    assert_eq!(got, sequential(&text).0);
    assert_eq!(got[1].value.as_list().map(<[_]>::len), Some(5000));
}

#[test]
fn missing_indices_count_across_blocks_and_blank_lines() {
    let mut text = String::new();
    for i in 0..300 {
        text += &line(None, i % 5, if i % 2 == 0 { "invoke" } else { "ok" }, "1");
        if i % 37 == 0 {
            text += "\n  \n";
        }
    }
    let (got, _) = chunked(&text, 2, 50);
    assert_eq!(got, sequential(&text).0);
    assert!(got.iter().enumerate().all(|(i, op)| op.index == i as u64));
}

#[test]
fn a_malformed_line_is_named_by_its_line_number() {
    let mut text = history(100);
    text += "\n"; // a blank line counts as a line
    text += "{\"process\":1,\"type\":\"okay\",\"f\":\"add\",\"value\":1}\n";
    text += &history(100);
    let (_, want) = sequential(&text);
    assert_eq!(
        want.as_ref().unwrap_err(),
        "h.jsonl:202: unknown op type \"okay\" (expected invoke, ok, fail or info)"
    );
    for block in [1, 64, 1000, 1 << 20] {
        assert_eq!(chunked(&text, 2, block).1, want, "{block}-byte blocks");
    }
}

#[test]
fn a_truncated_last_line_ends_the_stream_quietly() {
    let text = history(50);
    let cut = &text[..text.len() - 9];
    for block in [16, 512, 1 << 20] {
        let (got, end) = chunked(cut, 2, block);
        assert_eq!(end, Ok(true));
        assert_eq!(got.len(), 99);
        assert_eq!(got, sequential(cut).0);
    }
    // A complete last line without its newline is an op, not a truncation.
    let (got, end) = chunked(text.trim_end(), 2, 64);
    assert_eq!((got.len(), end), (100, Ok(false)));
}

#[test]
fn break_stops_early_without_hanging() {
    let text = history(2000);
    let mut seen = 0;
    let r = stream(text.as_bytes(), "h", 2, 64, |_| {
        seen += 1;
        if seen == 10 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(r.is_ok());
    assert_eq!(seen, 10);
}

#[test]
fn a_read_error_is_reported_after_the_ops_before_it() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let text = history(10);
    let r = stream(Failing(text.as_bytes()), "h", 2, 64, |_| {
        ControlFlow::Continue(())
    });
    assert_eq!(r.unwrap_err().to_string(), "failed to read h: disk on fire");
}

proptest! {
    /// Any text, cut into any block size, reads as the one-thread reader reads it.
    #[test]
    fn agrees_with_the_sequential_reader(
        lines in prop::collection::vec(
            prop_oneof![
                (0u64..4, any::<bool>(), -5i64..5).prop_map(|(p, ok, v)| line(None, p, if ok { "ok" } else { "invoke" }, &v.to_string())),
                Just("\n".to_owned()),
                Just("{\"process\":1,\"type\":\"ok\",\"f\":\"a\\\"dd\",\"value\":[1, 2.5]}\n".to_owned()),
                Just("{\"process\":1,\"type\":\"ok\"\n".to_owned()),
            ],
            0..40,
        ),
        cut in 0usize..30,
        block in 1usize..200,
        workers in 1usize..4,
    ) {
        let text = lines.concat();
        let text = &text[..text.len().saturating_sub(cut)];
        prop_assert_eq!(chunked(text, workers, block), sequential(text));
    }
}

#[test]
fn an_index_that_does_not_increase_is_an_error_naming_its_line() {
    // Line 5 repeats index 3; line 7 goes back. Wherever the blocks split, the same error.
    let mut text = history(2);
    text += &line(Some(3), 1, "invoke", "9");
    let (_, end) = sequential(&text);
    let want = Err("h.jsonl:5: index 3 after index 3: indexes must increase (each op once, in the order written)".to_string());
    assert_eq!(end, want);
    for (workers, block) in [(1, 1 << 20), (2, 1), (3, 40), (2, 100)] {
        assert_eq!(
            chunked(&text, workers, block).1,
            want,
            "{workers} workers, {block}-byte blocks"
        );
    }
    let mut back = history(3);
    back += &line(Some(1), 1, "invoke", "9");
    let (_, end) = sequential(&back);
    assert!(
        end.unwrap_err()
            .starts_with("h.jsonl:7: index 1 after index 5")
    );
    for (workers, block) in [(2, 1), (3, 40)] {
        let e = chunked(&back, workers, block).1.unwrap_err();
        assert!(e.starts_with("h.jsonl:7: index 1 after index 5"), "{e}");
    }
    // Ops without an index are numbered by position and never conflict.
    let mut mixed = line(None, 1, "invoke", "1");
    mixed += &line(None, 1, "ok", "1");
    assert_eq!(sequential(&mixed).1, Ok(false));
}
