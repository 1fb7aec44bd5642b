//! Conferences: who is in which room, and the room's snapshot on the mixer
//! carrying it.
//!
//! The brain is the authority: a room's state lives here, and every change
//! (a join, a leave, a flag) goes to the mixer as a complete snapshot under
//! a new version. A room's changes are serialised by its own lock, so the
//! versions a mixer sees only grow. The first to join places the room on a
//! mixer; the last to leave releases it there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use proto::message::{Event, LegStats, ReplyBody, RequestBody};
use proto::snapshot::{
    ConferenceId, ConferenceOptions, ConferenceSnapshot, LocalEndpoint, Participant,
    ParticipantFlags, PayloadType, Rtcp,
};
use store::TenantId;
use tokio::sync::watch;

use crate::nodes::{MixerPlace, NodeError, Nodes};

/// How new rooms are mixed.
#[derive(Debug, Clone)]
pub struct ConferenceConfig {
    /// 8000, 16000, 32000 or 48000 Hz.
    pub sample_rate: u32,
    pub tick_ms: u16,
    pub max_speakers: u8,
    pub options: ConferenceOptions,
    /// Most participants in one room.
    pub max_participants: usize,
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16000,
            tick_ms: 20,
            max_speakers: 3,
            options: ConferenceOptions {
                join_leave_tones: true,
                ..ConferenceOptions::default()
            },
            max_participants: 500,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConferenceError {
    #[error("conference {0} is full")]
    Full(String),
    #[error("conference {0} is locked")]
    Locked(String),
    #[error("conference {0} is ending")]
    Ending(String),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("mixer refused the conference: {0}")]
    Refused(String),
}

/// A room, named by its tenant and its name in that tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomKey {
    pub tenant: TenantId,
    pub name: String,
}

/// What a participant's call must follow of its room as it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// Where the room is mixed now (it moves when a mixer dies).
    pub mixer: SocketAddr,
    /// Participants told to leave.
    pub kicked: BTreeSet<u32>,
    /// The room was ended: everyone leaves.
    pub ended: bool,
}

/// How a participant joins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinAs {
    pub flags: ParticipantFlags,
    /// Their leaving ends the room for everyone (a moderator's call).
    pub end_on_exit: bool,
}

/// One participant's place in a room.
#[derive(Debug, Clone)]
pub struct Seat {
    pub room: RoomKey,
    pub participant_id: u32,
    pub view: watch::Receiver<RoomView>,
}

impl Seat {
    /// Where the participant's SBC leg sends its audio.
    pub fn mixer(&self) -> SocketAddr {
        self.view.borrow().mixer
    }

    /// Kicked, or the room was ended.
    pub fn must_leave(&self) -> bool {
        let v = self.view.borrow();
        v.ended || v.kicked.contains(&self.participant_id)
    }
}

/// A live room, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    pub room: RoomKey,
    pub conference_id: String,
    pub mixer: Option<String>,
    pub participants: usize,
    /// Who is being mixed now, as the mixer last said.
    pub talking: Vec<u32>,
    /// Recordings the mixer has closed: (path, milliseconds).
    pub recordings: Vec<(String, u64)>,
}

struct Room {
    id: ConferenceId,
    place: Option<MixerPlace>,
    /// What the participants' calls follow: the mixer, kicks, the end.
    view: watch::Sender<RoomView>,
    /// No one new gets in.
    locked: bool,
    /// Participants whose leaving ends the room.
    end_on_exit: BTreeSet<u32>,
    /// Where the mix is recorded, if it is.
    recording: Option<String>,
    version: u64,
    next_id: u32,
    participants: BTreeMap<u32, Participant>,
    talking: std::collections::BTreeSet<u32>,
    recordings: Vec<(String, u64)>,
}

type RoomHandle = Arc<tokio::sync::Mutex<Room>>;

/// The live rooms, by name and by the id mixers know them by.
#[derive(Default)]
struct Rooms {
    by_key: HashMap<RoomKey, RoomHandle>,
    by_id: HashMap<ConferenceId, RoomHandle>,
}

/// The brain's conferences. Cheap to clone.
#[derive(Clone)]
pub struct Conferences {
    nodes: Nodes,
    config: Arc<ConferenceConfig>,
    rooms: Arc<Mutex<Rooms>>,
}

impl Conferences {
    /// Also starts watching the mixers: when one is declared dead, its
    /// rooms are recreated on a live one from the state kept here, and the
    /// participants' calls are told to repoint their SBC legs. Needs a
    /// tokio runtime.
    pub fn new(nodes: Nodes, config: ConferenceConfig) -> Self {
        let confs = Self {
            nodes,
            config: Arc::new(config),
            rooms: Arc::default(),
        };
        let mut deaths = confs.nodes.deaths();
        let rooms = Arc::downgrade(&confs.rooms);
        let (nodes, config) = (confs.nodes.clone(), confs.config.clone());
        tokio::spawn(async move {
            loop {
                let dead = match deaths.recv().await {
                    Ok((id, proto::message::Role::Mixer)) => id,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // Only for as long as the conferences themselves live.
                let Some(rooms) = rooms.upgrade() else { return };
                let confs = Conferences {
                    nodes: nodes.clone(),
                    config: config.clone(),
                    rooms,
                };
                confs.move_rooms_off(&dead).await;
            }
        });
        let mut events = confs.nodes.media_events();
        let rooms = Arc::downgrade(&confs.rooms);
        tokio::spawn(async move {
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "conference events fell behind");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(rooms) = rooms.upgrade() else { return };
                on_event(&rooms, ev).await;
            }
        });
        confs
    }

    /// Recreates every room of a dead mixer on a live one.
    async fn move_rooms_off(&self, dead: &proto::message::NodeId) {
        let rooms: Vec<_> = {
            let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            rooms.by_key.values().cloned().collect()
        };
        for room in rooms {
            let mut r = room.lock().await;
            if r.place.as_ref().is_none_or(|p| p.node != *dead) || r.participants.is_empty() {
                continue;
            }
            if let Err(e) = self.replace(&mut r).await {
                tracing::error!(conference = %r.id.0, error = %e, "conference lost its mixer and found no other");
            }
        }
    }

    /// Puts the room on a live mixer, with everyone in it, and tells the
    /// participants' calls where it now is.
    async fn replace(&self, r: &mut Room) -> Result<MixerPlace, ConferenceError> {
        let place = self.nodes.place_conference(&r.id)?;
        let n = i32::try_from(r.participants.len()).unwrap_or(i32::MAX);
        if let Some(old) = r.place.replace(place.clone()) {
            tracing::warn!(conference = %r.id.0, from = %old.node, to = %place.node, "conference moved to another mixer");
            self.nodes.forget_conference(&old, &r.id);
            self.nodes.mixer_participants(&old, -n);
        }
        self.nodes.mixer_participants(&place, n);
        for p in r.participants.values_mut() {
            p.local.range_id = place.range;
            p.local.rtp_port = place.addr.port();
        }
        if !r.participants.is_empty() {
            self.push(r, &place).await?;
        }
        // The SBC legs follow once the new mixer knows everyone.
        r.view.send_modify(|v| v.mixer = place.addr);
        Ok(place)
    }

    fn room(&self, key: &RoomKey) -> RoomHandle {
        let mut guard = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let rooms = &mut *guard;
        rooms
            .by_key
            .entry(key.clone())
            .or_insert_with(|| {
                let id = ConferenceId(format!(
                    "{}-{}-{}",
                    key.tenant.0,
                    key.name,
                    sip::ids::new_tag()
                ));
                let room = Arc::new(tokio::sync::Mutex::new(Room {
                    id: id.clone(),
                    place: None,
                    view: watch::channel(RoomView {
                        mixer: SocketAddr::from(([0, 0, 0, 0], 0)),
                        kicked: BTreeSet::new(),
                        ended: false,
                    })
                    .0,
                    locked: false,
                    end_on_exit: BTreeSet::new(),
                    recording: None,
                    version: 0,
                    next_id: 1,
                    participants: BTreeMap::new(),
                    talking: Default::default(),
                    recordings: Vec::new(),
                }));
                rooms.by_id.insert(id, room.clone());
                room
            })
            .clone()
    }

    /// Adds a participant whose SBC leg sends from `sbc` with `payload`;
    /// places the room on a mixer if it is new.
    pub async fn join(
        &self,
        room: &RoomKey,
        sbc: SocketAddr,
        payload: PayloadType,
        join: JoinAs,
    ) -> Result<Seat, ConferenceError> {
        let handle = self.room(room);
        let mut r = handle.lock().await;
        if r.view.borrow().ended {
            // Being emptied: this caller starts the room afresh once it is.
            drop(r);
            return Err(ConferenceError::Ending(room.name.clone()));
        }
        if r.locked {
            return Err(ConferenceError::Locked(room.name.clone()));
        }
        if r.participants.len() >= self.config.max_participants {
            return Err(ConferenceError::Full(room.name.clone()));
        }
        let place = match &r.place {
            Some(p) if self.nodes.is_alive(&p.node) => p.clone(),
            // New, or its mixer died: (re)create it on a live one.
            _ => self.replace(&mut r).await?,
        };
        let participant_id = r.next_id;
        r.next_id += 1;
        r.participants.insert(
            participant_id,
            Participant {
                participant_id,
                local: LocalEndpoint {
                    range_id: place.range,
                    rtp_port: place.addr.port(),
                    rtcp: Rtcp::Mux,
                },
                sbc_endpoint: sbc,
                payload_type: payload,
                ssrc: sip::ids::random_u64() as u32,
                flags: join.flags,
            },
        );
        if join.end_on_exit {
            r.end_on_exit.insert(participant_id);
        }
        if let Err(e) = self.push(&mut r, &place).await {
            r.participants.remove(&participant_id);
            if r.participants.is_empty() {
                self.close(room, &mut r, &place).await;
            }
            return Err(e);
        }
        self.nodes.mixer_participants(&place, 1);
        tracing::info!(conference = %r.id.0, participant_id, mixer = %place.node, "joined conference");
        Ok(Seat {
            room: room.clone(),
            participant_id,
            view: r.view.subscribe(),
        })
    }

    /// Takes the participant out; the last one out closes the room.
    /// Returns the participant's figures as the mixer counted them.
    pub async fn leave(&self, seat: &Seat) -> Option<LegStats> {
        let handle = self.room(&seat.room);
        let mut r = handle.lock().await;
        r.participants.remove(&seat.participant_id)?;
        r.talking.remove(&seat.participant_id);
        if r.end_on_exit.remove(&seat.participant_id) && !r.participants.is_empty() {
            tracing::info!(conference = %r.id.0, participant = seat.participant_id, "the moderator left: the conference ends");
            r.view.send_modify(|v| v.ended = true);
        }
        let place = r.place.clone()?;
        self.nodes.mixer_participants(&place, -1);
        let stats = self.stats(&r, &place, seat.participant_id).await;
        if r.participants.is_empty() {
            self.close(&seat.room, &mut r, &place).await;
        } else if let Err(e) = self.push(&mut r, &place).await {
            tracing::warn!(conference = %r.id.0, error = %e, "leave not applied on the mixer");
        }
        stats
    }

    /// Changes a participant's switches (mute, deaf, moderator).
    pub async fn set_flags(
        &self,
        seat: &Seat,
        flags: ParticipantFlags,
    ) -> Result<(), ConferenceError> {
        let handle = self.room(&seat.room);
        let mut r = handle.lock().await;
        let Some(p) = r.participants.get_mut(&seat.participant_id) else {
            return Ok(());
        };
        p.flags = flags;
        let Some(place) = r.place.clone() else {
            return Ok(());
        };
        self.push(&mut r, &place).await
    }

    fn existing(&self, key: &RoomKey) -> Option<RoomHandle> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.by_key.get(key).cloned()
    }

    /// Locks the room (no one new gets in: 503 to callers) or unlocks it.
    /// False when there is no such room.
    pub async fn lock(&self, key: &RoomKey, locked: bool) -> bool {
        let Some(room) = self.existing(key) else {
            return false;
        };
        room.lock().await.locked = locked;
        true
    }

    /// Tells a participant's call to hang up; false when not in the room.
    pub async fn kick(&self, key: &RoomKey, participant: u32) -> bool {
        let Some(room) = self.existing(key) else {
            return false;
        };
        let r = room.lock().await;
        if !r.participants.contains_key(&participant) {
            return false;
        }
        r.view.send_modify(|v| {
            v.kicked.insert(participant);
        });
        true
    }

    /// Ends the room: every participant's call hangs up.
    pub async fn end(&self, key: &RoomKey) -> bool {
        let Some(room) = self.existing(key) else {
            return false;
        };
        room.lock().await.view.send_modify(|v| v.ended = true);
        true
    }

    /// Mutes or unmutes a participant, or makes them deaf or not.
    pub async fn set_participant(
        &self,
        key: &RoomKey,
        participant: u32,
        flags: ParticipantFlags,
    ) -> Result<bool, ConferenceError> {
        let Some(room) = self.existing(key) else {
            return Ok(false);
        };
        let seat = Seat {
            room: key.clone(),
            participant_id: participant,
            view: room.lock().await.view.subscribe(),
        };
        self.set_flags(&seat, flags).await.map(|()| true)
    }

    /// Starts recording the room's mix to `path` (a WAV file on the mixer),
    /// or stops with `None`.
    pub async fn record(
        &self,
        key: &RoomKey,
        path: Option<String>,
    ) -> Result<bool, ConferenceError> {
        let Some(room) = self.existing(key) else {
            return Ok(false);
        };
        let mut r = room.lock().await;
        r.recording = path;
        let Some(place) = r.place.clone() else {
            return Ok(true);
        };
        self.push(&mut r, &place).await.map(|()| true)
    }

    /// The live rooms.
    pub async fn list(&self) -> Vec<RoomInfo> {
        let rooms: Vec<_> = {
            let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            rooms
                .by_key
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect()
        };
        let mut out = Vec::new();
        for (key, room) in rooms {
            let r = room.lock().await;
            if r.participants.is_empty() {
                continue;
            }
            out.push(RoomInfo {
                room: key,
                conference_id: r.id.0.clone(),
                mixer: r.place.as_ref().map(|p| p.node.0.clone()),
                participants: r.participants.len(),
                talking: r.talking.iter().copied().collect(),
                recordings: r.recordings.clone(),
            });
        }
        out.sort_by(|a, b| a.room.cmp(&b.room));
        out
    }

    /// Sends the room's snapshot under a new version.
    async fn push(&self, r: &mut Room, place: &MixerPlace) -> Result<(), ConferenceError> {
        r.version += 1;
        let snapshot = ConferenceSnapshot {
            conference_id: r.id.clone(),
            version: r.version,
            sample_rate: self.config.sample_rate,
            tick_ms: self.config.tick_ms,
            max_speakers: self.config.max_speakers,
            options: ConferenceOptions {
                recording: r.recording.clone(),
                ..self.config.options.clone()
            },
            participants: r.participants.values().cloned().collect(),
        };
        match self
            .nodes
            .mixer_request(place, RequestBody::ApplyConference(snapshot))
            .await
        {
            Ok(_) => Ok(()),
            Err(NodeError::Request {
                source: proto::brain::RequestError::Refused(body),
                ..
            }) => Err(ConferenceError::Refused(body.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    async fn stats(&self, r: &Room, place: &MixerPlace, participant: u32) -> Option<LegStats> {
        let body = RequestBody::GetConferenceStats {
            conference_id: r.id.clone(),
        };
        match self.nodes.mixer_request(place, body).await {
            Ok(ReplyBody::ConferenceStats { participants, .. }) => participants
                .into_iter()
                .find(|(id, _)| *id == participant)
                .map(|(_, s)| s),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(conference = %r.id.0, error = %e, "no conference stats");
                None
            }
        }
    }

    async fn close(&self, key: &RoomKey, r: &mut Room, place: &MixerPlace) {
        let body = RequestBody::ReleaseConference {
            conference_id: r.id.clone(),
        };
        if let Err(e) = self.nodes.mixer_request(place, body).await {
            tracing::warn!(conference = %r.id.0, error = %e, "ReleaseConference failed");
        }
        self.nodes.forget_conference(place, &r.id);
        r.place = None;
        // Forget the room, unless someone is already waiting to join it
        // (they hold its handle and will place it afresh).
        // (The map by key, the map by id and the caller hold it.)
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = rooms.by_key.get(key)
            && Arc::strong_count(h) <= 3
        {
            rooms.by_key.remove(key);
            rooms.by_id.remove(&r.id);
        }
        tracing::info!(conference = %r.id.0, "conference closed");
    }
}

/// Takes a mixer's word on who talks and what it recorded.
async fn on_event(rooms: &Mutex<Rooms>, ev: Event) {
    let conference = match &ev {
        Event::Talking { conference_id, .. } | Event::RecordingDone { conference_id, .. } => {
            conference_id
        }
        _ => return,
    };
    let room = {
        let rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.by_id.get(conference).cloned()
    };
    if let Some(room) = room {
        let mut r = room.lock().await;
        match ev {
            Event::Talking {
                participant_id,
                talking,
                ..
            } => {
                if talking && r.participants.contains_key(&participant_id) {
                    r.talking.insert(participant_id);
                } else {
                    r.talking.remove(&participant_id);
                }
            }
            Event::RecordingDone {
                path, duration_ms, ..
            } => {
                tracing::info!(conference = %r.id.0, %path, duration_ms, "conference recording ready");
                r.recordings.push((path, duration_ms));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::nodes::NodesConfig;
    use proto::message::{Capacity, ErrorBody, ErrorCode, Hello, Load, NodeId, Role};
    use proto::snapshot::{PortRange, RangeId};
    use std::time::Duration;

    /// A mixer that keeps what it is told, and refuses what it is told to.
    #[derive(Clone)]
    struct FakeMixer {
        id: &'static str,
        base_port: u16,
        seen: Arc<Mutex<Vec<RequestBody>>>,
        refuse: Arc<Mutex<bool>>,
    }

    impl FakeMixer {
        fn new(id: &'static str, base_port: u16) -> Self {
            Self {
                id,
                base_port,
                seen: Arc::default(),
                refuse: Arc::default(),
            }
        }

        /// Connects it to the brain's node port; the handle stops it.
        fn connect(
            &self,
            nodes: &Nodes,
        ) -> (
            tokio::task::JoinHandle<()>,
            tokio::sync::mpsc::Sender<proto::message::Event>,
        ) {
            let (events, rx) = tokio::sync::mpsc::channel(4);
            let task = tokio::spawn(proto::node::run(
                nodes.local_addr(),
                proto::node::NodeConfig::default(),
                self.clone(),
                rx,
            ));
            (task, events)
        }
    }

    async fn until(what: &str, mut ok: impl FnMut() -> bool) {
        for _ in 0..300 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}");
    }

    impl proto::node::NodeHandler for FakeMixer {
        fn hello(&mut self) -> Hello {
            let mut h = Hello::new(
                NodeId(self.id.into()),
                Role::Mixer,
                Capacity {
                    max_streams: 1000,
                    workers: 2,
                },
            );
            h.ranges = (0..2)
                .map(|i| PortRange {
                    id: RangeId(i + 1),
                    bind_ip: [127, 0, 0, 1].into(),
                    vip: None,
                    first_port: self.base_port + i as u16,
                    last_port: self.base_port + i as u16,
                })
                .collect();
            h
        }
        fn load(&mut self) -> Load {
            Load::default()
        }
        fn handle(&mut self, req: RequestBody) -> Result<ReplyBody, ErrorBody> {
            if *self.refuse.lock().expect("lock") {
                return Err(ErrorBody::new(ErrorCode::UNSUPPORTED, "no codec"));
            }
            self.seen.lock().expect("lock").push(req.clone());
            Ok(match req {
                RequestBody::ApplyConference(s) => ReplyBody::Applied { version: s.version },
                RequestBody::GetConferenceStats { conference_id }
                | RequestBody::ReleaseConference { conference_id } => ReplyBody::ConferenceStats {
                    conference_id,
                    participants: vec![(
                        1,
                        LegStats {
                            packets_in: 50,
                            ..LegStats::default()
                        },
                    )],
                },
                _ => ReplyBody::Done,
            })
        }
    }

    /// The mixer's node task, and the sender that keeps its event stream,
    /// and so its session, open.
    type Node = (
        tokio::task::JoinHandle<()>,
        tokio::sync::mpsc::Sender<proto::message::Event>,
    );

    async fn setup() -> (Conferences, FakeMixer, Node) {
        let nodes = Nodes::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            proto::brain::BrainConfig::default(),
            NodesConfig::default(),
            Arc::new(Metrics::new()),
        )
        .await
        .expect("listen");
        let mixer = FakeMixer::new("mixer-1", 40000);
        let node = mixer.connect(&nodes);
        let id = NodeId("mixer-1".into());
        until("the mixer connects", || nodes.is_alive(&id)).await;
        (
            Conferences::new(nodes, ConferenceConfig::default()),
            mixer,
            node,
        )
    }

    fn pcmu() -> PayloadType {
        PayloadType {
            pt: 0,
            name: "PCMU".into(),
            clock_rate: 8000,
            channels: 1,
        }
    }

    fn room(name: &str) -> RoomKey {
        RoomKey {
            tenant: TenantId(1),
            name: name.into(),
        }
    }

    fn applied(m: &FakeMixer) -> Vec<ConferenceSnapshot> {
        m.seen
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|r| match r {
                RequestBody::ApplyConference(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn joins_and_leaves_become_growing_snapshots_and_the_last_out_closes() {
        let (confs, mixer, _events) = setup().await;
        let sbc = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let f = JoinAs::default();
        let a = confs
            .join(&room("r"), sbc(30000), pcmu(), f)
            .await
            .expect("a");
        let b = confs
            .join(&room("r"), sbc(30002), pcmu(), f)
            .await
            .expect("b");
        let (a_at, b_at) = (a.mixer(), b.mixer());
        assert_eq!(a_at, b_at, "one room, one mixer port");
        assert_eq!(a_at.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
        let snaps = applied(&mixer);
        assert_eq!(snaps.len(), 2);
        assert_eq!((snaps[0].version, snaps[1].version), (1, 2));
        assert_eq!(snaps[1].participants.len(), 2);
        let p = &snaps[1].participants[1];
        assert_eq!(p.sbc_endpoint, sbc(30002));
        assert_eq!(p.local.rtp_port, a_at.port());

        // Another room goes to the other mixer thread (port).
        let c = confs
            .join(&room("s"), sbc(30004), pcmu(), f)
            .await
            .expect("c");
        assert_ne!(c.mixer().port(), a_at.port());

        let stats = confs.leave(&a).await.expect("a's figures");
        assert_eq!(stats.packets_in, 50);
        let snaps = applied(&mixer);
        let last = snaps.last().expect("snapshot");
        assert_eq!(last.participants.len(), 1, "a is gone");
        assert_eq!(last.version, 3);
        confs.leave(&b).await;
        assert!(
            mixer.seen.lock().expect("lock").iter().any(
                |r| matches!(r, RequestBody::ReleaseConference { conference_id } if *conference_id == last.conference_id)
            ),
            "the last one out releases the room"
        );
        let rooms = confs.list().await;
        assert_eq!(rooms.len(), 1, "{rooms:?}");
        assert_eq!(rooms[0].room.name, "s");
    }

    #[tokio::test]
    async fn a_refused_join_leaves_no_trace() {
        let (confs, mixer, _events) = setup().await;
        *mixer.refuse.lock().expect("lock") = true;
        let sbc = SocketAddr::from(([127, 0, 0, 1], 30000));
        let err = confs
            .join(&room("r"), sbc, pcmu(), JoinAs::default())
            .await
            .expect_err("refused");
        assert!(matches!(err, ConferenceError::Refused(_)), "{err}");
        assert!(confs.list().await.is_empty());
    }

    #[tokio::test]
    async fn no_mixer_no_conference() {
        let nodes = Nodes::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            proto::brain::BrainConfig::default(),
            NodesConfig::default(),
            Arc::new(Metrics::new()),
        )
        .await
        .expect("listen");
        let confs = Conferences::new(nodes, ConferenceConfig::default());
        let sbc = SocketAddr::from(([127, 0, 0, 1], 30000));
        let err = confs
            .join(&room("r"), sbc, pcmu(), JoinAs::default())
            .await
            .expect_err("no mixer");
        assert!(
            matches!(err, ConferenceError::Node(NodeError::NoLiveMixer)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_dead_mixers_rooms_move_to_a_live_one_and_calls_are_told() {
        let (confs, _first, (first_task, _events)) = setup().await;
        let sbc = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let f = JoinAs::default();
        let mut a = confs
            .join(&room("r"), sbc(30000), pcmu(), f)
            .await
            .expect("a");
        let b = confs
            .join(&room("r"), sbc(30002), pcmu(), f)
            .await
            .expect("b");
        assert_eq!(a.view.borrow_and_update().mixer.port(), 40000);

        let second = FakeMixer::new("mixer-2", 41000);
        let _node2 = second.connect(&confs.nodes);
        let id2 = NodeId("mixer-2".into());
        until("mixer-2 connects", || confs.nodes.is_alive(&id2)).await;
        // mixer-1 stops heartbeating: declared dead after dead_after.
        first_task.abort();
        tokio::time::timeout(Duration::from_secs(5), a.view.changed())
            .await
            .expect("told in time")
            .expect("room alive");
        let now = a.mixer();
        assert_eq!(now.port(), 41000, "the room is on mixer-2 now");
        assert_eq!(b.mixer(), now);
        let snaps = applied(&second);
        let last = snaps.last().expect("mixer-2 got the room");
        assert_eq!(last.participants.len(), 2, "with everyone in it");
        assert!(last.participants.iter().all(|p| p.local.rtp_port == 41000));
        // Later changes go to mixer-2.
        confs.leave(&b).await;
        assert_eq!(
            applied(&second).last().map(|s| s.participants.len()),
            Some(1)
        );
    }

    #[tokio::test]
    async fn the_mixers_talk_events_say_who_is_talking() {
        let (confs, mixer, (_task, events)) = setup().await;
        let sbc = SocketAddr::from(([127, 0, 0, 1], 30000));
        let a = confs
            .join(&room("r"), sbc, pcmu(), JoinAs::default())
            .await
            .expect("a");
        let conference_id = applied(&mixer)[0].conference_id.clone();
        events
            .send(Event::Talking {
                conference_id: conference_id.clone(),
                participant_id: a.participant_id,
                talking: true,
            })
            .await
            .expect("sent");
        let mut talking = Vec::new();
        for _ in 0..200 {
            talking = confs.list().await[0].talking.clone();
            if !talking.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(talking, vec![a.participant_id]);
        events
            .send(Event::Talking {
                conference_id,
                participant_id: a.participant_id,
                talking: false,
            })
            .await
            .expect("sent");
        for _ in 0..200 {
            if confs.list().await[0].talking.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("still talking");
    }

    #[tokio::test]
    async fn lock_kick_and_the_moderators_exit() {
        let (confs, mixer, _node) = setup().await;
        let sbc = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let moderator = JoinAs {
            flags: ParticipantFlags {
                moderator: true,
                ..ParticipantFlags::default()
            },
            end_on_exit: true,
        };
        let m = confs
            .join(&room("r"), sbc(30000), pcmu(), moderator)
            .await
            .expect("m");
        let a = confs
            .join(&room("r"), sbc(30002), pcmu(), JoinAs::default())
            .await
            .expect("a");
        let b = confs
            .join(&room("r"), sbc(30004), pcmu(), JoinAs::default())
            .await
            .expect("b");
        assert!(
            applied(&mixer).last().expect("snap").participants[0]
                .flags
                .moderator
        );

        assert!(confs.lock(&room("r"), true).await);
        let err = confs
            .join(&room("r"), sbc(30006), pcmu(), JoinAs::default())
            .await
            .expect_err("locked");
        assert!(matches!(err, ConferenceError::Locked(_)), "{err}");
        assert!(confs.lock(&room("r"), false).await);
        assert!(!confs.lock(&room("nowhere"), true).await);

        // Muting by the operator reaches the mixer.
        let muted = ParticipantFlags {
            muted: true,
            ..ParticipantFlags::default()
        };
        assert!(
            confs
                .set_participant(&room("r"), a.participant_id, muted)
                .await
                .expect("mute")
        );
        let last = applied(&mixer).last().cloned().expect("snap");
        let pa = last
            .participants
            .iter()
            .find(|p| p.participant_id == a.participant_id);
        assert!(pa.is_some_and(|p| p.flags.muted));

        assert!(confs.kick(&room("r"), a.participant_id).await);
        assert!(a.must_leave(), "a is told to go");
        assert!(!b.must_leave() && !m.must_leave(), "nobody else");
        confs.leave(&a).await;

        // The moderator leaves: the room ends for everyone left.
        confs.leave(&m).await;
        assert!(b.must_leave(), "b is told the room ended");
        let err = confs
            .join(&room("r"), sbc(30008), pcmu(), JoinAs::default())
            .await
            .expect_err("ending");
        assert!(matches!(err, ConferenceError::Ending(_)), "{err}");
        confs.leave(&b).await;
        // Empty and gone: the next caller starts it afresh.
        confs
            .join(&room("r"), sbc(30010), pcmu(), JoinAs::default())
            .await
            .expect("a new room");
    }

    #[tokio::test]
    async fn recording_is_in_the_snapshot() {
        let (confs, mixer, _node) = setup().await;
        let sbc = SocketAddr::from(([127, 0, 0, 1], 30000));
        confs
            .join(&room("r"), sbc, pcmu(), JoinAs::default())
            .await
            .expect("a");
        assert!(
            confs
                .record(&room("r"), Some("/tmp/r.wav".into()))
                .await
                .expect("record")
        );
        let last = applied(&mixer).last().cloned().expect("snap");
        assert_eq!(last.options.recording.as_deref(), Some("/tmp/r.wav"));
        assert!(last.options.join_leave_tones, "the configured options stay");
    }
}
