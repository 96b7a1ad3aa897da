//! A real SMTP peer on loopback for alert-mail tests: speaks enough SMTP for a client
//! to deliver, records each message's envelope and DATA, and can turn away the first
//! connections (421) to exercise retries, or every connection while it is "down".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One delivered message.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// The listener and what it received.
pub struct SmtpServer {
    pub url: String,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    /// Connections accepted, the turned-away ones included.
    pub connections: Arc<Mutex<usize>>,
    /// While set, every connection is turned away (an outage).
    down: Arc<AtomicBool>,
}

impl SmtpServer {
    /// Listens on 127.0.0.1; the first `refuse` connections get `421` and are closed.
    pub async fn start(refuse: usize) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mails = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (m, r, d) = (mails.clone(), connections.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let turn_away = {
                    let mut n = r.lock().unwrap();
                    *n += 1;
                    *n <= refuse || d.load(Ordering::SeqCst)
                };
                let mails = m.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    if turn_away {
                        let _ = write.write_all(b"421 busy, try later\r\n").await;
                        return;
                    }
                    let _ = session(BufReader::new(read), &mut write, mails).await;
                });
            }
        });
        SmtpServer {
            url,
            mails,
            connections,
            down,
        }
    }

    /// Starts or ends an outage: while down, every connection gets `421`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn session(
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    mails: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    write.write_all(b"220 loopback ESMTP test\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 loopback\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_string());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if read.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(&line);
            }
            mails.lock().unwrap().push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await?;
    }
}
