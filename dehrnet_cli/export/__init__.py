"""Exported models: onnx (torch -> ONNX with dehrnet metadata and a parity check), calibration (crops to
calibrate int8 on), quantize (ONNX Runtime static int8 quantization).
"""
