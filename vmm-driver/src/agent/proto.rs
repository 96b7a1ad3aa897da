//! The wire protocol between the driver and the in-sprite agent: length-prefixed frames
//! multiplexing many commands and file transfers over one byte stream.
//!
//! A frame is `len: u32 LE | kind: u8 | chan: u32 LE | payload[len]`. The driver picks a
//! fresh `chan` for every command or file transfer; every frame about it carries that
//! number, so many commands run at once over the same stream. A connection a program in
//! the sprite opens through the agent's proxy is a channel the agent picks, with the
//! high bit set ([`AGENT_CHAN`]), so the two never collide; a connection the host opens
//! to a port inside the sprite (a request to the sprite's URL, a tunnel) is a channel
//! the driver picks with [`DIAL_CHAN`] set.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// The largest payload a frame may carry; bigger transfers are split into chunks.
pub const MAX_PAYLOAD: usize = 4 << 20;
/// Size of the chunks file contents and command output are sent in.
pub const CHUNK: usize = 256 << 10;
/// The bit set in the channel of every connection the agent opens.
pub const AGENT_CHAN: u32 = 1 << 31;
/// The bit set in the channel of every connection the host opens into the sprite.
pub const DIAL_CHAN: u32 = 1 << 30;
/// Bytes of a connection either side may send before the other acknowledges them: the
/// flow control that keeps a slow reader from filling the other side's memory.
pub const NET_WINDOW: u32 = 1 << 20;

/// What a frame means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Driver → agent: start a command ([`ExecSpec`] as JSON).
    Exec = 1,
    /// Driver → agent: bytes for the command's stdin.
    Stdin = 2,
    /// Driver → agent: close the command's stdin.
    StdinEof = 3,
    /// Driver → agent: kill the command's process group.
    Kill = 4,
    /// Driver → agent: send a file ([`ReadSpec`] as JSON).
    ReadFile = 5,
    /// Driver → agent: write a file ([`WriteSpec`] as JSON); `FileData` chunks and a
    /// `FileEnd` follow.
    WriteFile = 6,
    /// Driver → agent: the command's terminal changed size ([`TtySize`] as JSON).
    Resize = 9,
    /// Driver → agent: signal the terminal's foreground process group (the number as
    /// 4 bytes LE).
    Signal = 10,
    /// Either way: the answer to a [`Kind::NetOpen`] (driver → agent) or a
    /// [`Kind::Dial`] (agent → driver), [`NetReply`] as JSON.
    NetReply = 11,
    /// Driver → agent: connect to a port on the sprite's loopback ([`Dial`] as JSON).
    Dial = 12,
    /// Either way: a chunk of file contents.
    FileData = 7,
    /// Either way: the end of a file's contents.
    FileEnd = 8,
    /// Agent → driver: bytes the command wrote to stdout.
    Stdout = 16,
    /// Agent → driver: bytes the command wrote to stderr.
    Stderr = 17,
    /// Agent → driver: the command ended ([`ExitInfo`] as JSON); the channel is done.
    Exit = 18,
    /// Agent → driver: the request failed ([`ErrorInfo`] as JSON); the channel is done.
    Error = 19,
    /// Agent → driver: a file write finished; the channel is done.
    Done = 20,
    /// Agent → driver: a program wants a connection ([`NetOpen`] as JSON).
    NetOpen = 21,
    /// Either way: bytes of a connection.
    NetData = 22,
    /// Either way: the sender will send no more bytes of this connection.
    NetEnd = 23,
    /// Either way: the connection is over, both ways, at once.
    NetReset = 24,
    /// Either way: this many bytes (u32 LE) of the other side's were taken.
    NetAck = 25,
}

impl Kind {
    /// Whether the agent may send this kind (the others only go to the agent).
    pub fn from_agent(self) -> bool {
        matches!(
            self,
            Kind::FileData
                | Kind::FileEnd
                | Kind::Stdout
                | Kind::Stderr
                | Kind::Exit
                | Kind::Error
                | Kind::Done
                | Kind::NetOpen
                | Kind::NetReply
                | Kind::NetData
                | Kind::NetEnd
                | Kind::NetReset
                | Kind::NetAck
        )
    }

    fn from_u8(raw: u8) -> Option<Self> {
        use Kind::*;
        Some(match raw {
            1 => Exec,
            2 => Stdin,
            3 => StdinEof,
            4 => Kill,
            5 => ReadFile,
            6 => WriteFile,
            7 => FileData,
            8 => FileEnd,
            9 => Resize,
            10 => Signal,
            11 => NetReply,
            12 => Dial,
            16 => Stdout,
            17 => Stderr,
            18 => Exit,
            19 => Error,
            20 => Done,
            21 => NetOpen,
            22 => NetData,
            23 => NetEnd,
            24 => NetReset,
            25 => NetAck,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it means.
    pub kind: Kind,
    /// The command or transfer it belongs to.
    pub chan: u32,
    /// Its bytes.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame with a payload.
    pub fn new(kind: Kind, chan: u32, payload: Vec<u8>) -> Self {
        Self {
            kind,
            chan,
            payload,
        }
    }

    /// A frame carrying a value as JSON.
    pub fn json(kind: Kind, chan: u32, value: &impl Serialize) -> Self {
        Self::new(kind, chan, serde_json::to_vec(value).unwrap_or_default())
    }

    /// Parses the payload as JSON.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> std::io::Result<T> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.chan.to_le_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Frame>> {
    read_frame_max(r, MAX_PAYLOAD).await
}

/// Reads one frame whose payload is at most `max` bytes (checked before anything is
/// allocated for it); `None` at a clean end of stream.
pub async fn read_frame_max<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let (len, kind, chan) = parse_header(&header, max)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame {
        kind,
        chan,
        payload,
    }))
}

/// Reads one frame from a blocking reader; `None` at a clean end of stream.
pub fn read_frame_sync<R: std::io::Read>(r: &mut R) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (len, kind, chan) = parse_header(&header, MAX_PAYLOAD)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame {
        kind,
        chan,
        payload,
    }))
}

fn parse_header(header: &[u8; HEADER_LEN], max: usize) -> std::io::Result<(usize, Kind, u32)> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    if len > max {
        return Err(bad(format!("frame of {len} bytes is too large")));
    }
    let kind = Kind::from_u8(header[4]).ok_or_else(|| bad(format!("frame kind {}", header[4])))?;
    let chan = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    Ok((len, kind, chan))
}

/// A command to start, as the agent receives it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Kill the process group after this many milliseconds.
    pub timeout_ms: Option<u64>,
    /// Most bytes forwarded of stdout and of stderr each (0: no cap).
    pub max_output: u64,
    /// Run on a pseudo-terminal of this size.
    #[serde(default)]
    pub tty: Option<crate::TtySize>,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, `128 + signal` when killed.
    pub code: i32,
    /// Killed at its timeout.
    pub timed_out: bool,
    /// Output was cut at the cap.
    pub truncated: bool,
}

/// The byte count a [`Kind::NetAck`] carries (0 for a malformed one).
pub fn acked(payload: &[u8]) -> u32 {
    payload
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

/// A connection a program in the sprite asked the agent's proxy for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetOpen {
    /// A host name or an IP address, as the program gave it.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// A connection the host wants to a port on the sprite's loopback.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dial {
    /// The port (tried on 127.0.0.1, then on ::1).
    pub port: u16,
}

/// The answer to a [`NetOpen`] or a [`Dial`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetReply {
    /// Connected: bytes may flow.
    pub ok: bool,
    /// Why not, for the program (names the rule that refused it).
    #[serde(default)]
    pub message: String,
}

/// A file to send back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReadSpec {
    /// Absolute path.
    pub path: String,
    /// Refuse files larger than this.
    pub max_bytes: u64,
}

/// A file to write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteSpec {
    /// Absolute path; parent directories are created.
    pub path: String,
}

/// Why a request failed inside the sprite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such file.
    NotFound,
    /// The request is wrong (not a regular file, bad path).
    Invalid,
    /// The file is larger than allowed.
    TooLarge,
    /// No space left on the disk.
    DiskFull,
    /// Any other failure.
    Io,
}

/// A failure, as the agent reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// What kind.
    pub kind: ErrorKind,
    /// For a person.
    pub message: String,
}

impl ErrorInfo {
    /// Classifies an I/O error.
    pub fn from_io(what: &str, e: &std::io::Error) -> Self {
        let kind = match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => ErrorKind::DiskFull,
            Some(libc::ENOENT) => ErrorKind::NotFound,
            // The caller's mistakes: a path that cannot name a file (too long, a symlink
            // loop, a directory), or a place that cannot be written (read-only, denied).
            Some(
                libc::EISDIR
                | libc::ENOTDIR
                | libc::ENAMETOOLONG
                | libc::ELOOP
                | libc::EROFS
                | libc::EACCES
                | libc::EPERM
                | libc::EEXIST
                | libc::ETXTBSY,
            ) => ErrorKind::Invalid,
            _ => ErrorKind::Io,
        };
        Self {
            kind,
            message: format!("{what}: {e}"),
        }
    }
}
