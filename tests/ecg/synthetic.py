"""Synthetic ECG files of each cart format, written by this project for its tests.

``python -m tests.ecg.synthetic`` rewrites the files in ``tests/data/ecg/synthetic``;
the tests read those committed files and check them against ``beat_train`` below, so a
reader and the writer here must agree on every sample.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from tests.ecg.scp_writer import ScpRecord, write_scp

RATE = 500
OUT = Path(__file__).resolve().parent.parent / "data" / "ecg" / "synthetic"
TWELVE = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
EIGHT = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


def beat_train(leads: int = 8, seconds: float = 10.0, rr: int = 400, seed: int = 1):
    """``leads`` rows of whole numbers: a P, QRS and T every ``rr`` samples, small noise."""
    t = np.arange(int(seconds * RATE))
    rng = np.random.default_rng(seed)
    data = np.zeros((leads, len(t)))
    peaks = list(range(150, len(t) - 200, rr))
    for index in range(leads):
        gain = 0.5 + 0.15 * (index % 8)
        for peak in peaks:
            data[index] += 150 * gain * np.exp(-(((t - peak + 80) / 12.0) ** 2))
            data[index] += 1200 * gain * np.exp(-(((t - peak) / 5.0) ** 2))
            data[index] += 300 * gain * np.exp(-(((t - peak - 150) / 25.0) ** 2))
    data += rng.integers(-3, 4, size=data.shape)
    return np.rint(data).astype(np.int64), peaks


def muse_xml() -> str:
    """GE MUSE: 8 leads in units of 4.88 µV, a DOCTYPE, 12SL values and statements."""
    samples, _peaks = beat_train()
    leads = []
    for name, row in zip(EIGHT, samples, strict=True):
        data = base64.b64encode(row.astype("<i2").tobytes()).decode()
        leads.append(
            f"""<LeadData><LeadByteCountTotal>{2 * len(row)}</LeadByteCountTotal>
<LeadSampleCountTotal>{len(row)}</LeadSampleCountTotal>
<LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>
<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadID>{name}</LeadID>
<LeadSampleSize>2</LeadSampleSize><WaveFormData>{data}</WaveFormData></LeadData>"""
        )
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE RestingECG SYSTEM "restecg.dtd">
<RestingECG>
<PatientDemographics><PatientID>SYN-1</PatientID><PatientLastName>SYNTHETIC</PatientLastName>
<Gender>FEMALE</Gender></PatientDemographics>
<RestingECGMeasurements><VentricularRate>75</VentricularRate><PRInterval>160</PRInterval>
<QRSDuration>96</QRSDuration><QTInterval>400</QTInterval><QTCorrected>446</QTCorrected>
<PAxis>45</PAxis><RAxis>60</RAxis><TAxis>40</TAxis><POnset>100</POnset><POffset>150</POffset>
<ECGSampleBase>500</ECGSampleBase><QTcFrederica>430</QTcFrederica></RestingECGMeasurements>
<Diagnosis><DiagnosisStatement><StmtText>Normal sinus rhythm</StmtText></DiagnosisStatement>
<DiagnosisStatement><StmtText>Normal ECG</StmtText></DiagnosisStatement></Diagnosis>
<Waveform><WaveformType>Median</WaveformType><SampleBase>500</SampleBase></Waveform>
<Waveform><WaveformType>Rhythm</WaveformType><NumberofLeads>8</NumberofLeads>
<SampleBase>500</SampleBase><SampleExponent>0</SampleExponent>
<HighPassFilter>5</HighPassFilter><LowPassFilter>150</LowPassFilter><ACFilter>50</ACFilter>
{"".join(leads)}
</Waveform>
</RestingECG>
"""


def philips_xml() -> str:
    """Philips SierraECG 1.03, uncompressed 12 leads in units of 5 µV (saved as UTF-16)."""
    samples, _peaks = beat_train(leads=12, seconds=4)
    data = base64.b64encode(samples.astype("<i2").tobytes()).decode()
    duration = samples.shape[1] * 1000 // RATE
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<restingecgdata xmlns="http://www3.medical.philips.com">
<documentinfo><documenttype>SierraECG</documenttype><documentversion>1.03</documentversion>
</documentinfo>
<dataacquisition><signalcharacteristics><samplingrate>{RATE}</samplingrate>
<resolution>5</resolution><hipass>0.05</hipass><lowpass>150</lowpass><acsetting>50</acsetting>
<acquisitiontype>STD-12</acquisitiontype><numberchannelsallocated>12</numberchannelsallocated>
</signalcharacteristics></dataacquisition>
<patient><generalpatientdata><patientid>SYN-2</patientid><sex>Male</sex></generalpatientdata>
</patient>
<interpretations><interpretation>
<globalmeasurements><heartrate>75</heartrate><rrint>800</rrint><pdur>100</pdur>
<print>160</print><qrsdur>96</qrsdur><qtint>400</qtint><qtcb>447</qtcb><qtcf>431</qtcf>
<pfrontaxis>45</pfrontaxis><qrsfrontaxis>60</qrsfrontaxis><tfrontaxis>40</tfrontaxis>
</globalmeasurements>
<statement><leftstatement>SINUS RHYTHM</leftstatement><rightstatement/></statement>
</interpretation></interpretations>
<waveforms><parsedwaveforms dataencoding="Base64" compression="Uncompressed"
 numberofleads="12" leadlabels="{" ".join(TWELVE)}" durationperchannel="{duration}"
 samplespersecond="{RATE}" resolution="5">{data}</parsedwaveforms></waveforms>
</restingecgdata>
"""


def ptb_record() -> dict[str, bytes]:
    """A PTB-style WFDB record: 12 leads in ``.dat``, Frank X, Y, Z in ``.xyz``."""
    samples, _peaks = beat_train(leads=15)
    names = ["i", "ii", "iii", "avr", "avl", "avf", *[f"v{i}" for i in range(1, 7)]]
    names += ["vx", "vy", "vz"]
    lines = [f"ptb01 15 {RATE} {samples.shape[1]}"]
    for index, name in enumerate(names):
        file = "ptb01.dat" if index < 12 else "ptb01.xyz"
        checksum = ((int(samples[index].sum()) + 32768) % 65536) - 32768
        lines.append(f"{file} 16 2000/mV 16 0 {samples[index][0]} {checksum} 0 {name}")
    lines.append("# synthetic record in the layout of the PTB Diagnostic ECG Database")
    dat = samples[:12].T.astype("<i2").tobytes()
    xyz = samples[12:].T.astype("<i2").tobytes()
    return {
        "ptb01.hea": ("\n".join(lines) + "\n").encode(),
        "ptb01.dat": dat,
        "ptb01.xyz": xyz,
    }


def scp_file() -> bytes:
    """SCP-ECG: default Huffman, second differences, reference beat, sections 7 and 11."""
    samples, peaks = beat_train()
    fiducial = 60
    reference = samples[:, peaks[1] - fiducial + 1 : peaks[1] - fiducial + 161]
    return write_scp(
        ScpRecord(
            [1, 2, 3, 4, 5, 6, 7, 8],
            samples,
            difference=2,
            reference=reference,
            fiducial=fiducial,
            qrs=[(0, p - 40, p, p + 60) for p in peaks],
            protected=[(p - 30, p + 50) for p in peaks],
            global_values={
                "rr": 800,
                "p_on": 100,
                "p_off": 200,
                "qrs_on": 260,
                "qrs_off": 356,
                "t_off": 660,
                "p_axis": 45,
                "qrs_axis": 60,
                "t_axis": 40,
            },
            statements=["Sinus rhythm"],
            patient={"last": "SYNTHETIC", "id": "SYN-3"},
        )
    )


def write_all(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "muse.xml").write_bytes(muse_xml().encode("latin-1"))
    (out / "philips_103.xml").write_bytes(philips_xml().encode("utf-16"))
    for name, data in ptb_record().items():
        (out / name).write_bytes(data)
    (out / "cart.scp").write_bytes(scp_file())


if __name__ == "__main__":
    write_all()
