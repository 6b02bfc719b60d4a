//! Peers that speak websocket but not CDP: the session gives one clear
//! error, fast, and holds at most about one message (MAX_MESSAGE) whatever
//! the peer sends: garbage, a frame that claims 1 GiB, a message that
//! never ends, or an endless flood of events that never answers.

use inspector::{Error, Session};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A websocket server on loopback that runs `behave` on its first client's
/// raw TCP stream once the handshake is done and a request came in.
async fn hostile<F, Fut>(behave: F) -> String
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // Wait for the client's first request, then misbehave on the raw socket.
        use futures_util::StreamExt;
        let _ = ws.next().await;
        let tcp = ws.into_inner();
        behave(tcp).await;
    });
    format!("ws://127.0.0.1:{port}/hostile")
}

/// A server-to-client frame header (unmasked) for `len` payload bytes.
fn header(first: u8, len: u64) -> Vec<u8> {
    let mut h = vec![first];
    if len < 126 {
        h.push(len as u8);
    } else if len <= u16::MAX as u64 {
        h.push(126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h
}

/// One test at a time: they read this process's peak RSS.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
}

async fn expect_bad_peer(url: &str, within: Duration, want: &str) -> String {
    let session = Session::connect(url).await.unwrap();
    let started = Instant::now();
    let r = tokio::time::timeout(within, session.evaluate::<u32>("1 + 1")).await.expect("no error in time");
    let e = r.unwrap_err();
    assert!(started.elapsed() < within);
    let text = e.to_string();
    assert!(matches!(e, Error::BadPeer { .. }), "{e:?}");
    assert!(text.contains(want), "{text}");
    assert!(!text.contains('\n'), "{text}");
    text
}

#[tokio::test]
async fn garbage_is_one_clear_error() {
    let _serial = SERIAL.lock().await;
    let url = hostile(|mut tcp| async move {
        let body = b"<html>hello, I am not an inspector</html>";
        let mut frame = header(0x81, body.len() as u64);
        frame.extend_from_slice(body);
        tcp.write_all(&frame).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let text = expect_bad_peer(&url, Duration::from_secs(5), "not a CDP message").await;
    assert!(text.contains("<html>hello"), "{text}");
    assert!(text.starts_with(&format!("{url} is not a working Node inspector")), "{text}");
}

#[tokio::test]
async fn a_frame_claiming_a_gigabyte_is_refused_at_its_header() {
    let _serial = SERIAL.lock().await;
    let url = hostile(|mut tcp| async move {
        let _ = tcp.write_all(&header(0x81, 1 << 30)).await;
        // Then trickle payload for as long as the client reads.
        let chunk = vec![b'a'; 64 << 10];
        for _ in 0..1000 {
            if tcp.write_all(&chunk).await.is_err() {
                break;
            }
        }
    })
    .await;
    let before = peak_rss_kib();
    expect_bad_peer(&url, Duration::from_secs(5), "over the 64 MiB limit").await;
    assert!(peak_rss_kib() < before + 100 * 1024, "peak RSS grew from {before} KiB to {} KiB", peak_rss_kib());
}

#[tokio::test]
async fn a_message_that_never_ends_stops_at_the_limit() {
    let _serial = SERIAL.lock().await;
    let url = hostile(|mut tcp| async move {
        // A text message of 1 MiB fragments with no final fragment, forever.
        let chunk = vec![b' '; 1 << 20];
        let mut first = true;
        loop {
            let mut frame = header(if first { 0x01 } else { 0x00 }, chunk.len() as u64);
            frame.extend_from_slice(&chunk);
            first = false;
            if tcp.write_all(&frame).await.is_err() {
                break;
            }
        }
    })
    .await;
    let before = peak_rss_kib();
    expect_bad_peer(&url, Duration::from_secs(20), "over the 64 MiB limit").await;
    // About one message's worth, not more.
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(grew < 200 * 1024, "peak RSS grew by {grew} KiB");
}

#[tokio::test]
async fn an_endless_flood_of_events_without_a_reply_times_out() {
    let _serial = SERIAL.lock().await;
    let url = hostile(|mut tcp| async move {
        let body = br#"{"method":"Runtime.consoleAPICalled","params":{"type":"log","args":[]}}"#;
        let mut frame = header(0x81, body.len() as u64);
        frame.extend_from_slice(body);
        let burst: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 1000).collect();
        while tcp.write_all(&burst).await.is_ok() {}
    })
    .await;
    let session = Session::connect(&url).await.unwrap();
    session.set_call_timeout(Duration::from_secs(2));
    let before = peak_rss_kib();
    let e = session.evaluate::<u32>("1 + 1").await.unwrap_err();
    assert!(matches!(e, Error::CallTimeout { .. }), "{e:?}");
    assert_eq!(e.to_string(), "Runtime.evaluate: no reply from the target within 2.0 s");
    // Events nobody reads are bounded by the subscribers' buffer.
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(grew < 100 * 1024, "peak RSS grew by {grew} KiB");
}
