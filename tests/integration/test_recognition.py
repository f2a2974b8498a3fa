"""Detection, alignment, quality and embedding with the real models on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from recognition_helpers import analyzer, assert_int8_face_agrees

from edge.backends import open_session
from edge.config.recognition import DetectorConfig, QualityConfig
from edge.demo import DEMO_CLIP
from edge.models import EMBEDDING_MODEL, RUNTIME_SUFFIX, shipped_precisions
from edge.pipeline.detect import FaceDetector
from edge.pipeline.images import read_image
from edge.pipeline.quality import assess
from edge.samples import OTHER_PERSON, SAME_PERSON
from edge.types import LEFT_EYE, MOUTH_CENTER, NOSE_TIP, RIGHT_EYE

MIN_EYE_PX = QualityConfig().min_eye_px


def test_one_face_with_plausible_keypoints() -> None:
    image = read_image(SAME_PERSON[0])
    (face,) = analyzer().detect(image)
    x1, y1, x2, y2 = face.box
    assert 50 < x2 - x1 < 200 and face.score > 0.7
    kps = face.keypoints
    assert kps[RIGHT_EYE][0] < kps[LEFT_EYE][0], "subject's right eye is on the image's left"
    assert kps[RIGHT_EYE][1] < kps[NOSE_TIP][1] < kps[MOUTH_CENTER][1]
    for x, y in kps[:4]:
        assert x1 <= x <= x2 and y1 <= y <= y2


@pytest.mark.parametrize("frame_hw", [(480, 640), (640, 360), (300, 300)])
def test_boxes_come_back_in_frame_pixels_for_any_frame_shape(frame_hw: tuple[int, int]) -> None:
    photo = read_image(SAME_PERSON[0])
    (reference,) = analyzer().detect(photo)
    frame = np.full((*frame_hw, 3), 40, dtype=np.uint8)
    ox, oy = (frame_hw[1] - 250) // 2 + 3, (frame_hw[0] - 250) // 2 + 5
    frame[oy : oy + 250, ox : ox + 250] = photo
    (moved,) = analyzer().detect(frame)
    shift = np.array(moved.box) - np.array(reference.box)
    # Letterboxing changes the input scale, so allow a few pixels of jitter, not a distortion.
    assert np.allclose(shift, [ox, oy, ox, oy], atol=6), shift


def test_an_empty_frame_has_no_faces() -> None:
    assert analyzer().analyze(np.zeros((480, 640, 3), dtype=np.uint8)) == []


def test_min_face_size_drops_small_faces() -> None:
    session = open_session("blazeface_full_range", "onnx", 1)
    photo = read_image(SAME_PERSON[0])
    assert FaceDetector(session, DetectorConfig(min_face_px=20)).detect(photo)
    assert FaceDetector(session, DetectorConfig(min_face_px=200)).detect(photo) == []


def test_short_range_model_finds_a_close_face() -> None:
    session = open_session("blazeface_short_range", "onnx", 1)
    detector = FaceDetector(session, DetectorConfig(model="short_range"))
    (face,) = detector.detect(read_image(SAME_PERSON[0]))
    assert face.score > 0.5


def test_embeddings_separate_people() -> None:
    faces = [analyzer().analyze(read_image(p))[0] for p in (*SAME_PERSON, OTHER_PERSON)]
    a, b, other = (f.embedding for f in faces)
    assert a is not None and b is not None and other is not None
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert float(a @ b) > 0.6, "two photos of one person"
    assert float(a @ other) < 0.35, "two different people"


def test_batched_and_single_embeddings_agree() -> None:
    image = read_image(SAME_PERSON[0])
    core = analyzer()
    aligned = core.align(image, core.detect(image)) * 5
    batched = core.embed(aligned)
    single = core.embed(aligned[:1])
    assert batched.shape == (5, 192)
    assert np.allclose(batched, single[0], atol=1e-5)


# Lowest cosine to LiteRT fp32 on the sample photos. The LiteRT variants keep float activations
# (on LFW their lowest cosine is 0.9989); ONNX Runtime's int8 quantizes activations too (LFW:
# mean 0.990, lowest 0.965).
VARIANT_FLOOR = {
    ("onnx", "fp32"): 0.9999,
    ("litert", "fp16"): 0.9999,
    ("litert", "int8"): 0.998,
    ("onnx", "int8"): 0.97,
}


@pytest.mark.parametrize(("backend", "precision"), sorted(VARIANT_FLOOR))
def test_every_embedder_variant_agrees_with_fp32(backend: str, precision: str) -> None:
    reference = analyzer("litert")
    variant = analyzer(backend, precision)
    for path in (*SAME_PERSON, OTHER_PERSON):
        image = read_image(path)
        ours = variant.analyze(image)[0].embedding
        theirs = reference.analyze(image)[0].embedding
        assert ours is not None and theirs is not None
        assert float(ours @ theirs) >= VARIANT_FLOOR[backend, precision], path.name


def test_every_shipped_embedder_variant_is_tested() -> None:
    shipped = {
        (backend, precision)
        for backend in RUNTIME_SUFFIX
        for precision in shipped_precisions(EMBEDDING_MODEL, backend)
    }
    assert shipped - {("litert", "fp32")} == set(VARIANT_FLOOR)


@pytest.mark.parametrize("backend", sorted(RUNTIME_SUFFIX))
def test_int8_detector_finds_the_same_face(backend: str) -> None:
    for path in (*SAME_PERSON, OTHER_PERSON):
        image = read_image(path)
        (reference,) = analyzer(backend).detect(image)
        (face,) = analyzer(backend, detector="int8").detect(image)
        assert_int8_face_agrees(face, reference, path.name)


def test_quality_gate_scores_blur_and_tiny_faces_low() -> None:
    core = analyzer()
    image = read_image(SAME_PERSON[0])
    (sharp,) = core.align(image, core.detect(image))
    blurred_image = cv2.GaussianBlur(image, (0, 0), 4)
    (blurred,) = core.align(blurred_image, core.detect(blurred_image))
    assert assess(sharp, MIN_EYE_PX).score > 0.5
    assert assess(blurred, MIN_EYE_PX).sharpness < assess(sharp, MIN_EYE_PX).sharpness / 2

    tiny = np.full((480, 640, 3), 90, dtype=np.uint8)
    tiny[200:232, 300:332] = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
    faces = core.analyze(tiny)
    assert all(f.embedding is None for f in faces), "a 12-px face must not be embedded"


def test_faces_below_the_floor_carry_no_embedding() -> None:
    strict = analyzer().config.model_copy(
        update={"quality": analyzer().config.quality.model_copy(update={"min_quality": 1.0})}
    )
    from edge.pipeline.analyzer import FaceAnalyzer

    (face,) = FaceAnalyzer(strict).analyze(read_image(OTHER_PERSON))
    assert face.quality < 1.0 and face.embedding is None


def _clip_frame(index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read frame {index} of {DEMO_CLIP}"
    return np.asarray(frame, dtype=np.uint8)


def test_a_profile_close_up_is_gated_even_though_its_points_look_frontal() -> None:
    # Frame 27 of the demo clip: a large, sharp face in full profile. The face mesh still fits
    # five frontal-looking points to it, so only its face-presence output can gate it.
    faces = analyzer().analyze(_clip_frame(27))
    assert faces, "the profile is detected"
    assert all(face.embedding is None for face in faces)


def test_a_frontal_frame_of_the_clip_passes_the_gate() -> None:
    faces = analyzer().analyze(_clip_frame(150))
    assert any(face.embedding is not None for face in faces)


def test_degenerate_keypoints_are_gated_not_raised() -> None:
    from edge.pipeline.align import TEMPLATE_5, align_points

    image = read_image(SAME_PERSON[0])
    same_spot = np.full((5, 2), 120.0, dtype=np.float32)
    aligned = align_points(image, same_spot, TEMPLATE_5)
    assert aligned.image.shape == (112, 112, 3)
    assert assess(aligned, MIN_EYE_PX).score == 0.0


def test_a_detector_config_that_does_not_fit_the_model_is_a_model_error() -> None:
    from edge.errors import ModelError

    session = open_session("blazeface_full_range", "onnx", 1)
    with pytest.raises(ModelError, match=r"does not match detector\.model 'short_range'"):
        FaceDetector(session, DetectorConfig(model="short_range"))
