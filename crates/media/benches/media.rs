use criterion::{Criterion, black_box, criterion_group, criterion_main};
use media::analysis::tone;
use media::g711;
use media::g722::{G722Decoder, G722Encoder};
use media::{Concealer, Resampler, Vad, VadConfig};

fn codecs(c: &mut Criterion) {
    let pcm8 = tone(8000, 440.0, 8000.0, 160);
    let pcm16 = tone(16000, 440.0, 8000.0, 320);
    let mut bytes = [0u8; 160];
    let mut out = [0i16; 320];
    c.bench_function("ulaw encode 20 ms", |b| {
        b.iter(|| g711::ulaw_encode(black_box(&pcm8), &mut bytes))
    });
    g711::ulaw_encode(&pcm8, &mut bytes);
    c.bench_function("ulaw decode 20 ms", |b| {
        b.iter(|| g711::ulaw_decode(black_box(&bytes), &mut out))
    });
    let mut enc = G722Encoder::new();
    c.bench_function("g722 encode 20 ms", |b| {
        b.iter(|| enc.encode(black_box(&pcm16), &mut bytes))
    });
    let mut dec = G722Decoder::new();
    c.bench_function("g722 decode 20 ms", |b| {
        b.iter(|| dec.decode(black_box(&bytes), &mut out))
    });
}

fn dsp(c: &mut Criterion) {
    for (from, to) in [
        (8000, 16000),
        (8000, 48000),
        (48000, 8000),
        (16000, 48000),
        (48000, 16000),
    ] {
        let frame = from as usize / 50;
        let pcm = tone(from, 440.0, 8000.0, frame);
        let mut r = Resampler::new(from, to, frame).expect("ratio");
        let mut out = vec![0i16; r.frame_out()];
        eprintln!("resample {from}->{to}: delay {} output samples", r.delay());
        c.bench_function(&format!("resample {from}->{to} 20 ms"), |b| {
            b.iter(|| r.process(black_box(&pcm), &mut out))
        });
    }
    // rubato's FFT resampler, fixed in and out, the same 20 ms frames, f32
    // in and out (no i16 conversion charged to it).
    for (from, to) in [(8000usize, 48000usize), (48000, 8000), (16000, 48000)] {
        use rubato::audioadapter_buffers::direct::InterleavedSlice;
        use rubato::{Fft, FixedSync, Resampler as _};
        let frame = from / 50;
        let mut r = Fft::<f32>::new(from, to, frame, 1, FixedSync::Both).expect("rubato");
        eprintln!(
            "rubato fft {from}->{to}: delay {} output samples",
            r.output_delay()
        );
        let input: Vec<f32> = tone(from as u32, 440.0, 8000.0, r.input_frames_next())
            .iter()
            .map(|&s| s as f32)
            .collect();
        let mut output = vec![0f32; r.output_frames_max()];
        let n_in = input.len();
        let n_out = output.len();
        c.bench_function(&format!("rubato fft {from}->{to} 20 ms"), |b| {
            b.iter(|| {
                let i = InterleavedSlice::new(&input, 1, n_in).expect("in");
                let mut o = InterleavedSlice::new_mut(&mut output, 1, n_out).expect("out");
                r.process_into_buffer(&i, &mut o, None).expect("process")
            })
        });
    }
    let pcm = tone(8000, 440.0, 8000.0, 160);
    let mut vad = Vad::new(VadConfig::default());
    c.bench_function("vad 20 ms at 8 kHz", |b| {
        b.iter(|| vad.process(black_box(&pcm)))
    });
    let mut level = media::LevelControl::new(media::LevelConfig::default());
    let mut frame = pcm.clone();
    c.bench_function("level control 20 ms at 8 kHz", |b| {
        b.iter(|| {
            frame.copy_from_slice(&pcm);
            level.process(black_box(&mut frame), true)
        })
    });
    for rate in [8000u32, 16000, 48000] {
        let n = rate as usize / 50;
        let input = tone(rate, 440.0, 8000.0, n);
        let mut d = media::Denoiser::new(rate, n).expect("denoiser");
        let mut frame = input.clone();
        c.bench_function(&format!("denoise 20 ms at {rate} Hz"), |b| {
            b.iter(|| {
                frame.copy_from_slice(&input);
                d.process(black_box(&mut frame))
            })
        });
    }
    // One good frame then one lost: the loss pays for the pitch search.
    for rate in [8000u32, 48000] {
        let n = rate as usize / 50;
        let good = tone(rate, 220.0, 8000.0, n);
        let mut plc = Concealer::new(rate);
        let (mut g, mut f) = (good.clone(), vec![0i16; n]);
        c.bench_function(&format!("plc good + first lost 20 ms at {rate} Hz"), |b| {
            b.iter(|| {
                g.copy_from_slice(&good);
                plc.good_frame(&mut g);
                plc.conceal(black_box(&mut f));
            })
        });
    }
}

criterion_group!(benches, codecs, dsp);
criterion_main!(benches);
