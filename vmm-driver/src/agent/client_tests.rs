//! The driver's agent client against a hostile agent: the test holds the agent's end
//! of a real socket pair and writes what a compromised sprite could.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::client::AgentClient;
use super::inbound::{QUEUE, STALL};
use super::proto::{read_frame, Frame, Kind, CHUNK};
use crate::{DriverError, ExecRequest};

fn pair() -> (AgentClient, UnixStream) {
    let (host, agent) = UnixStream::pair().expect("socket pair");
    (AgentClient::new(host, "m-test".into()), agent)
}

fn request(argv: &str) -> ExecRequest {
    ExecRequest {
        argv: vec![argv.into()],
        ..Default::default()
    }
}

/// Reads the frames the host sent until the one starting a command; returns its channel.
async fn next_exec(agent: &mut UnixStream) -> u32 {
    loop {
        let frame = read_frame(agent).await.unwrap().expect("a frame");
        if frame.kind == Kind::Exec {
            return frame.chan;
        }
    }
}

#[tokio::test]
async fn a_frame_kind_only_the_driver_sends_ends_the_calls_with_an_error() {
    let (client, mut agent) = pair();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.exec(request("sleep")).await }
    });
    let chan = next_exec(&mut agent).await;
    let forged = Frame::new(Kind::Exec, chan, b"{}".to_vec());
    agent.write_all(&forged.encode()).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call did not end")
        .unwrap();
    match result {
        Err(DriverError::InvalidState(why)) => assert!(why.contains("broke the protocol"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(client.is_closed());
    // Later calls fail at once instead of waiting on a dead stream.
    assert!(client.exec(request("true")).await.is_err());
}

#[tokio::test]
async fn an_oversized_header_or_a_wrong_kind_for_the_request_closes_the_stream() {
    for bad in [
        // A 1 GiB stdout frame: refused from its header, nothing allocated.
        {
            let mut header = (1u32 << 30).to_le_bytes().to_vec();
            header.push(Kind::Stdout as u8);
            header.extend_from_slice(&1u32.to_le_bytes());
            header
        },
        // A file chunk for a command.
        Frame::new(Kind::FileData, 1, vec![0; 16]).encode(),
    ] {
        let (client, mut agent) = pair();
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.exec(request("true")).await }
        });
        assert_eq!(next_exec(&mut agent).await, 1);
        agent.write_all(&bad).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the call did not end")
            .unwrap();
        assert!(result.is_err(), "{result:?}");
        assert!(client.is_closed());
    }
}

#[tokio::test]
async fn a_file_larger_than_asked_is_refused_whatever_the_agent_sends() {
    let (client, mut agent) = pair();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.read_file("/etc/passwd", 1000).await }
    });
    let frame = read_frame(&mut agent).await.unwrap().unwrap();
    assert_eq!(frame.kind, Kind::ReadFile);
    for _ in 0..4 {
        let chunk = Frame::new(Kind::FileData, frame.chan, vec![b'x'; 600]);
        let _ = agent.write_all(&chunk.encode()).await;
    }
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call did not end")
        .unwrap();
    assert!(matches!(result, Err(DriverError::Invalid(_))), "{result:?}");
}

#[tokio::test]
async fn output_for_a_consumer_that_reads_nothing_is_held_back_not_buffered() {
    let (client, mut agent) = pair();
    // A streamed command whose events nobody takes.
    let stream = client.exec_stream(request("yes")).await.unwrap();
    let chan = next_exec(&mut agent).await;
    let frame = Frame::new(Kind::Stdout, chan, vec![b'y'; CHUNK]).encode();
    let mut written = 0usize;
    let flood = async {
        loop {
            agent.write_all(&frame).await.unwrap();
            written += frame.len();
        }
    };
    // Well under STALL: the host must be holding the agent back, not dropping the call.
    assert!(Duration::from_secs(2) < STALL);
    let _ = tokio::time::timeout(Duration::from_secs(2), flood).await;
    // What the host accepted: its queues (request and events, a few frames each), the
    // frame in hand, and the kernel's socket buffers.
    let bound = (2 * QUEUE + 4) * CHUNK + (4 << 20);
    assert!(written <= bound, "{written} bytes accepted, bound {bound}");
    assert!(!client.is_closed());
    drop(stream);
}
