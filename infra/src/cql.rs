//! Just enough of Cassandra's native protocol (v4) for readiness probes: STARTUP, then one QUERY
//! whose rows come back as raw cells. Synchronous, no dependencies, like the rest of infra; the
//! app talks to Cassandra through the scylla driver.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};

const VERSION: u8 = 0x04;
const OP_ERROR: u8 = 0x00;
const OP_STARTUP: u8 = 0x01;
const OP_READY: u8 = 0x02;
const OP_QUERY: u8 = 0x07;
const OP_RESULT: u8 = 0x08;
const FLAG_WARNING: u8 = 0x08;
const RESULT_ROWS: i32 = 0x0002;

/// Consistency levels used by the probes.
#[derive(Clone, Copy, Debug)]
pub enum Consistency {
    One = 0x0001,
    All = 0x0005,
}

/// One cell: `None` for null.
pub type Cell = Option<Vec<u8>>;

/// Runs `query` on the node at `host:port` (a fresh connection each time) and returns its rows
/// (empty for statements without rows).
pub fn query(host: &str, port: u16, cql: &str, consistency: Consistency, timeout: Duration) -> Result<Vec<Vec<Cell>>> {
    let addr = (host, port).to_socket_addrs()?.next().context("no address")?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {host}:{port}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut startup = Vec::new();
    startup.extend(1u16.to_be_bytes());
    put_string(&mut startup, "CQL_VERSION");
    put_string(&mut startup, "3.0.0");
    send(&mut s, OP_STARTUP, &startup)?;
    let (op, _) = receive(&mut s)?;
    if op != OP_READY {
        bail!("STARTUP answered with opcode {op:#x}");
    }
    let mut body = Vec::new();
    body.extend((cql.len() as i32).to_be_bytes());
    body.extend(cql.as_bytes());
    body.extend((consistency as u16).to_be_bytes());
    body.push(0); // no values, no paging options
    send(&mut s, OP_QUERY, &body)?;
    let (op, body) = receive(&mut s)?;
    if op != OP_RESULT {
        bail!("QUERY answered with opcode {op:#x}");
    }
    rows(&body)
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u16).to_be_bytes());
    buf.extend(s.as_bytes());
}

fn send(s: &mut TcpStream, opcode: u8, body: &[u8]) -> Result<()> {
    let mut frame = vec![VERSION, 0, 0, 1, opcode];
    frame.extend((body.len() as i32).to_be_bytes());
    frame.extend(body);
    s.write_all(&frame)?;
    Ok(())
}

/// Reads one response frame; an ERROR frame becomes an error with the server's message.
fn receive(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 9];
    s.read_exact(&mut header).context("reading a response")?;
    let len = i32::from_be_bytes(header[5..9].try_into()?);
    if !(0..=64 << 20).contains(&len) {
        bail!("response of {len} bytes");
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    let mut r = Reader { buf: &body, at: 0 };
    if header[1] & FLAG_WARNING != 0 {
        for _ in 0..r.u16()? {
            r.string()?;
        }
    }
    let body = body[r.at..].to_vec();
    if header[4] == OP_ERROR {
        let mut r = Reader { buf: &body, at: 0 };
        let code = r.i32()?;
        bail!("server error {code:#06x}: {}", r.string()?);
    }
    Ok((header[4], body))
}

fn rows(body: &[u8]) -> Result<Vec<Vec<Cell>>> {
    let mut r = Reader { buf: body, at: 0 };
    if r.i32()? != RESULT_ROWS {
        return Ok(vec![]);
    }
    let flags = r.i32()?;
    let columns = r.i32()?;
    if flags & 0x0002 != 0 {
        r.bytes()?; // paging state
    }
    if flags & 0x0004 == 0 {
        let global = flags & 0x0001 != 0;
        if global {
            r.string()?;
            r.string()?;
        }
        for _ in 0..columns {
            if !global {
                r.string()?;
                r.string()?;
            }
            r.string()?;
            r.type_option()?;
        }
    }
    let count = r.i32()?;
    (0..count).map(|_| (0..columns).map(|_| r.bytes()).collect()).collect()
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len()).context("truncated response")?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn bytes(&mut self) -> Result<Cell> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }
    /// Skips a column type (collections and user types nest).
    fn type_option(&mut self) -> Result<()> {
        match self.u16()? {
            0x0000 => {
                self.string()?;
            }
            0x0020 | 0x0022 => self.type_option()?,
            0x0021 => {
                self.type_option()?;
                self.type_option()?;
            }
            0x0030 => {
                self.string()?;
                self.string()?;
                for _ in 0..self.u16()? {
                    self.string()?;
                    self.type_option()?;
                }
            }
            0x0031 => {
                for _ in 0..self.u16()? {
                    self.type_option()?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A cell holding an `inet` as the usual dotted (or v6) notation.
pub fn inet(c: &Cell) -> Option<String> {
    match c.as_deref()? {
        [a, b, c, d] => Some(format!("{a}.{b}.{c}.{d}")),
        b if b.len() == 16 => {
            let arr: [u8; 16] = b.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(arr).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_global_table_spec_and_a_set_column() {
        let mut b = Vec::new();
        b.extend(RESULT_ROWS.to_be_bytes());
        b.extend(1i32.to_be_bytes()); // global tables spec
        b.extend(2i32.to_be_bytes());
        for s in ["system", "peers", "peer"] {
            put_string(&mut b, s);
        }
        b.extend(0x0010u16.to_be_bytes()); // inet
        put_string(&mut b, "tokens");
        b.extend(0x0022u16.to_be_bytes()); // set<text>
        b.extend(0x000Du16.to_be_bytes());
        b.extend(1i32.to_be_bytes()); // one row
        b.extend(4i32.to_be_bytes());
        b.extend([127, 0, 0, 2]);
        b.extend((-1i32).to_be_bytes());
        let rows = rows(&b).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(inet(&rows[0][0]).as_deref(), Some("127.0.0.2"));
        assert_eq!(rows[0][1], None);
    }

    #[test]
    fn a_result_without_rows_is_empty_and_truncation_is_an_error() {
        assert!(rows(&5i32.to_be_bytes()).unwrap().is_empty());
        let mut b = Vec::new();
        b.extend(RESULT_ROWS.to_be_bytes());
        b.extend(4i32.to_be_bytes()); // no metadata
        b.extend(1i32.to_be_bytes());
        b.extend(3i32.to_be_bytes()); // 3 rows promised, none sent
        assert!(rows(&b).is_err());
    }
}
