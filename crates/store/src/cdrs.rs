use crate::error::{Error, Result};
use crate::store::{Store, with_pool};
use crate::types::{
    Cdr, CdrFilter, CdrId, CdrSummary, Disposition, HangupSide, LegStats, NewCdr, TenantId,
};
use crate::validate;

/// A CDR joined with its two legs' columns (a_*, b_*), as one row.
#[derive(sqlx::FromRow)]
struct Row {
    id: CdrId,
    tenant_id: TenantId,
    tenant_name: String,
    call_id: String,
    caller: String,
    callee: String,
    direction: String,
    start_at: i64,
    answer_at: Option<i64>,
    end_at: i64,
    duration_ms: i64,
    disposition: String,
    sip_code: i64,
    hangup_side: String,
    a_packets_sent: Option<i64>,
    a_packets_received: Option<i64>,
    a_bytes_sent: Option<i64>,
    a_bytes_received: Option<i64>,
    a_packets_lost: Option<i64>,
    a_jitter_us: Option<i64>,
    a_mos: Option<f64>,
    b_packets_sent: Option<i64>,
    b_packets_received: Option<i64>,
    b_bytes_sent: Option<i64>,
    b_bytes_received: Option<i64>,
    b_packets_lost: Option<i64>,
    b_jitter_us: Option<i64>,
    b_mos: Option<f64>,
}

const SELECT: &str = "SELECT c.id, c.tenant_id, c.tenant_name, c.call_id, c.caller, c.callee, \
     c.direction, c.start_at, c.answer_at, c.end_at, c.duration_ms, c.disposition, c.sip_code, \
     c.hangup_side, \
     a.packets_sent AS a_packets_sent, a.packets_received AS a_packets_received, \
     a.bytes_sent AS a_bytes_sent, a.bytes_received AS a_bytes_received, \
     a.packets_lost AS a_packets_lost, a.jitter_us AS a_jitter_us, a.mos AS a_mos, \
     b.packets_sent AS b_packets_sent, b.packets_received AS b_packets_received, \
     b.bytes_sent AS b_bytes_sent, b.bytes_received AS b_bytes_received, \
     b.packets_lost AS b_packets_lost, b.jitter_us AS b_jitter_us, b.mos AS b_mos \
     FROM cdrs c \
     LEFT JOIN cdr_legs a ON a.cdr_id = c.id AND a.leg = 'a' \
     LEFT JOIN cdr_legs b ON b.cdr_id = c.id AND b.leg = 'b' \
     WHERE 1 = 1";

#[allow(clippy::too_many_arguments)]
fn leg(
    packets_sent: Option<i64>,
    packets_received: Option<i64>,
    bytes_sent: Option<i64>,
    bytes_received: Option<i64>,
    packets_lost: Option<i64>,
    jitter_us: Option<i64>,
    mos: Option<f64>,
) -> Option<LegStats> {
    // The counter columns are NOT NULL, so a NULL here means the LEFT JOIN
    // found no leg row. The CHECKs keep the values non-negative.
    let packets_sent = u64::try_from(packets_sent?).unwrap_or(0);
    let u = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Some(LegStats {
        packets_sent,
        packets_received: u(packets_received),
        bytes_sent: u(bytes_sent),
        bytes_received: u(bytes_received),
        packets_lost: u(packets_lost),
        jitter_us: u(jitter_us),
        mos,
    })
}

impl TryFrom<Row> for Cdr {
    type Error = Error;
    fn try_from(r: Row) -> Result<Cdr> {
        // The `try_from` attribute of sqlx's FromRow needs sqlx's `macros`
        // feature, so the text columns are converted here.
        let disposition = Disposition::parse(&r.disposition)
            .ok_or(Error::Invalid("a stored CDR has an unknown disposition"))?;
        let hangup_side = HangupSide::parse(&r.hangup_side)
            .ok_or(Error::Invalid("a stored CDR has an unknown hangup side"))?;
        Ok(Cdr {
            id: r.id,
            tenant_id: r.tenant_id,
            tenant_name: r.tenant_name,
            call_id: r.call_id,
            caller: r.caller,
            callee: r.callee,
            direction: r.direction,
            start_at: r.start_at,
            answer_at: r.answer_at,
            end_at: r.end_at,
            duration_ms: r.duration_ms,
            disposition,
            // The column's CHECK keeps it within 0..=699.
            sip_code: u16::try_from(r.sip_code).unwrap_or(0),
            hangup_side,
            leg_a: leg(
                r.a_packets_sent,
                r.a_packets_received,
                r.a_bytes_sent,
                r.a_bytes_received,
                r.a_packets_lost,
                r.a_jitter_us,
                r.a_mos,
            ),
            leg_b: leg(
                r.b_packets_sent,
                r.b_packets_received,
                r.b_bytes_sent,
                r.b_bytes_received,
                r.b_packets_lost,
                r.b_jitter_us,
                r.b_mos,
            ),
        })
    }
}

/// A leg's values, converted to what the columns hold before any write starts.
struct LegValues {
    name: &'static str,
    v: [i64; 6],
    mos: Option<f64>,
}

fn leg_values(name: &'static str, s: &LegStats) -> Result<LegValues> {
    let big = "a media counter does not fit in 63 bits";
    if s.mos.is_some_and(f64::is_nan) {
        return Err(Error::Invalid("MOS must be a number"));
    }
    Ok(LegValues {
        name,
        v: [
            validate::to_i64(s.packets_sent, big)?,
            validate::to_i64(s.packets_received, big)?,
            validate::to_i64(s.bytes_sent, big)?,
            validate::to_i64(s.bytes_received, big)?,
            validate::to_i64(s.packets_lost, big)?,
            validate::to_i64(s.jitter_us, big)?,
        ],
        mos: s.mos,
    })
}

const INSERT_CDR: &str = "INSERT INTO cdrs (tenant_id, tenant_name, call_id, caller, callee, \
     direction, start_at, answer_at, end_at, duration_ms, disposition, sip_code, hangup_side) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";
const INSERT_LEG: &str = "INSERT INTO cdr_legs (cdr_id, leg, packets_sent, packets_received, \
     bytes_sent, bytes_received, packets_lost, jitter_us, mos) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// A CDR checked and converted to column values, ready to insert.
struct Prepared<'a> {
    cdr: &'a NewCdr,
    duration_ms: i64,
    legs: Vec<LegValues>,
}

/// Checks everything the schema would refuse, so a batch never fails half
/// way through on one bad row.
pub(crate) fn validate_cdr(cdr: &NewCdr) -> Result<()> {
    prepare(cdr).map(|_| ())
}

fn prepare(cdr: &NewCdr) -> Result<Prepared<'_>> {
    let bad = |what| move |s: &str| validate::text(s, 512, what);
    bad("tenant name must be 1-512 bytes without control characters")(&cdr.tenant_name)?;
    bad("Call-ID must be 1-512 bytes without control characters")(&cdr.call_id)?;
    bad("caller must be 1-512 bytes without control characters")(&cdr.caller)?;
    bad("callee must be 1-512 bytes without control characters")(&cdr.callee)?;
    bad("direction must be 1-512 bytes without control characters")(&cdr.direction)?;
    if cdr.end_at < cdr.start_at {
        return Err(Error::Invalid("a call cannot end before it starts"));
    }
    if cdr
        .answer_at
        .is_some_and(|a| a < cdr.start_at || a > cdr.end_at)
    {
        return Err(Error::Invalid(
            "a call must be answered between its start and end",
        ));
    }
    if cdr.sip_code > 699 {
        return Err(Error::Invalid("SIP code must be at most 699"));
    }
    let mut legs = Vec::with_capacity(2);
    if let Some(a) = &cdr.leg_a {
        legs.push(leg_values("a", a)?);
    }
    if let Some(b) = &cdr.leg_b {
        legs.push(leg_values("b", b)?);
    }
    Ok(Prepared {
        cdr,
        duration_ms: cdr.answer_at.map_or(0, |a| cdr.end_at - a),
        legs,
    })
}

impl Store {
    /// Records a finished call, answered or not: the CDR and its legs' media
    /// stats in one transaction, so a failure leaves nothing behind.
    pub async fn insert_cdr(&self, cdr: &NewCdr) -> Result<CdrId> {
        let ids = self.insert_cdrs(std::slice::from_ref(cdr)).await?;
        ids.first()
            .copied()
            .ok_or(Error::Invalid("no CDR id returned"))
    }

    /// Records several calls in one transaction: all of them or, on any
    /// error, none. One commit (one fsync on SQLite) for the whole batch is
    /// what lets CDRs keep up with thousands of calls a second.
    pub async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<Vec<CdrId>> {
        let prepared = cdrs.iter().map(prepare).collect::<Result<Vec<_>>>()?;
        let ids = with_pool!(self, |pool| {
            let mut ids = Vec::with_capacity(prepared.len());
            let mut tx = pool.begin().await?;
            for p in &prepared {
                let cdr = p.cdr;
                let id: CdrId = sqlx::query_scalar(INSERT_CDR)
                    .bind(cdr.tenant_id)
                    .bind(&cdr.tenant_name)
                    .bind(&cdr.call_id)
                    .bind(&cdr.caller)
                    .bind(&cdr.callee)
                    .bind(&cdr.direction)
                    .bind(cdr.start_at)
                    .bind(cdr.answer_at)
                    .bind(cdr.end_at)
                    .bind(p.duration_ms)
                    .bind(cdr.disposition.as_str())
                    .bind(i64::from(cdr.sip_code))
                    .bind(cdr.hangup_side.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                for l in &p.legs {
                    sqlx::query(INSERT_LEG)
                        .bind(id)
                        .bind(l.name)
                        .bind(l.v[0])
                        .bind(l.v[1])
                        .bind(l.v[2])
                        .bind(l.v[3])
                        .bind(l.v[4])
                        .bind(l.v[5])
                        .bind(l.mos)
                        .execute(&mut *tx)
                        .await?;
                }
                ids.push(id);
            }
            // An early return above drops `tx`, which rolls it back.
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// CDRs matching `filter`, newest first. For the next page, pass the last
    /// returned id as `filter.cursor`.
    pub async fn list_cdrs(&self, filter: &CdrFilter) -> Result<Vec<Cdr>> {
        let limit = match filter.limit {
            0 => 100,
            n => i64::from(n.min(1000)),
        };
        let rows: Vec<Row> = with_pool!(self, |pool| {
            let mut q = sqlx::QueryBuilder::new(SELECT);
            if let Some(t) = filter.tenant {
                q.push(" AND c.tenant_id = ").push_bind(t);
            }
            if let Some(since) = filter.since {
                q.push(" AND c.start_at >= ").push_bind(since);
            }
            if let Some(until) = filter.until {
                q.push(" AND c.start_at < ").push_bind(until);
            }
            if let Some(cursor) = filter.cursor {
                q.push(" AND c.id < ").push_bind(cursor);
            }
            q.push(" ORDER BY c.id DESC LIMIT ").push_bind(limit);
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(Cdr::try_from).collect()
    }

    /// Call count, answered count and billable milliseconds over the CDRs
    /// `filter` selects (its limit and cursor are ignored).
    pub async fn cdr_summary(&self, filter: &CdrFilter) -> Result<CdrSummary> {
        // PostgreSQL's SUM(bigint) is NUMERIC: cast back so both backends
        // return a 64-bit integer.
        let head = "SELECT COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN answer_at IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) FROM cdrs WHERE 1 = 1";
        let (calls, answered, billable_ms): (i64, i64, i64) = with_pool!(self, |pool| {
            let mut q = sqlx::QueryBuilder::new(head);
            if let Some(t) = filter.tenant {
                q.push(" AND tenant_id = ").push_bind(t);
            }
            if let Some(since) = filter.since {
                q.push(" AND start_at >= ").push_bind(since);
            }
            if let Some(until) = filter.until {
                q.push(" AND start_at < ").push_bind(until);
            }
            q.build_query_as().fetch_one(pool).await?
        });
        Ok(CdrSummary {
            calls,
            answered,
            billable_ms,
        })
    }
}
