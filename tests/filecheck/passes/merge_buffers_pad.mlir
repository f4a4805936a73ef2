// RUN: nnopt-opt %s -p nn-fold-pad --split-input-file | filecheck %s
// RUN: nnopt-opt %s -p 'nn-merge-buffers{inplace-overlap=false}' --split-input-file | filecheck %s --check-prefix=MERGE
// RUN: nnopt-opt %s -p 'nn-merge-buffers{report=true inplace-overlap=false}' --split-input-file 2>&1 >/dev/null | filecheck %s --check-prefix=REPORT

// A zero pad on H/W folds into the convolution's explicit padding: SAME on the
// padded 6x6 input with stride 2 is (0, 1, 0, 1); the pad adds (1, 0, 0, 1).
// CHECK-LABEL: nn.graph @float
// CHECK-NOT:     nn.pad
// CHECK:         %y = nn.conv2d %x, %w {strides = array<i64: 2, 2>, padding = array<i64: 1, 1, 0, 2>}
// CHECK-SAME:      (tensor<1x5x5x2xf32>, tensor<2x3x3x2xf32>) -> tensor<1x3x3x2xf32>
// MERGE-LABEL: nn.graph @float
// MERGE-SAME:    nn.buffers = {b0 = #nn.buffer<size = 200, align = 16, kind = input>, b2 = #nn.buffer<size = 72, align = 16, kind = output>}
// MERGE-NOT:     nn.pad
// REPORT:      // nn-merge-buffers @float
// REPORT-NEXT: //   lower bound 'sram': 496 -> 288 bytes (41.9% lower); 288 after graph rewrites
// REPORT-NEXT: //   buffers: 3 -> 2
// REPORT-NEXT: //   rewrite fold-pad: 1
nn.graph @float(%x: tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32> {
  %w = nn.const dense<0.5> : tensor<2x3x3x2xf32>
  %p = nn.pad %x {pads = array<i64: 0, 0, 1, 0, 0, 1, 0, 0>} : (tensor<1x5x5x2xf32>) -> tensor<1x6x6x2xf32>
  %y = nn.conv2d %p, %w {strides = array<i64: 2, 2>, padding = "same"} : (tensor<1x6x6x2xf32>, tensor<2x3x3x2xf32>) -> tensor<1x3x3x2xf32>
  nn.output %y : tensor<1x3x3x2xf32>
}

// -----

// Quantized: the pad writes the zero point for 0.0, which is what the
// convolution's own padding means; explicit padding adds up.
!q = !quant.uniform<i8:f32, 0.5:-7>
!w = !quant.uniform<i8:f32, 0.25>
// CHECK-LABEL: nn.graph @int8
// MERGE-LABEL: nn.graph @int8
// MERGE-NOT:     nn.pad
// MERGE:         nn.depthwise_conv2d %x, %w {nn.place = #nn.place<"b0">, nn.scratch = #nn.place<"s0">
// CHECK-NOT:     nn.pad
// CHECK:         %y = nn.depthwise_conv2d %x, %w {strides = array<i64: 1, 1>, padding = array<i64: 2, 1, 1, 2>}
nn.graph @int8(%x: tensor<1x4x4x3x!q>) -> tensor<1x6x6x3x!q> {
  %w = nn.const dense<3> : tensor<1x2x2x3xi8> -> tensor<1x2x2x3x!w>
  %p = nn.pad %x {pads = array<i64: 0, 0, 1, 1, 0, 1, 0, 0>} : (tensor<1x4x4x3x!q>) -> tensor<1x6x5x3x!q>
  %y = nn.depthwise_conv2d %p, %w {strides = array<i64: 1, 1>, padding = array<i64: 1, 0, 1, 1>} : (tensor<1x6x5x3x!q>, tensor<1x2x2x3x!w>) -> tensor<1x6x6x3x!q>
  nn.output %y : tensor<1x6x6x3x!q>
}

// -----

// Not folded: channels padded, a non-zero value, a second use, a pool.
// CHECK-LABEL: nn.graph @kept
// MERGE-LABEL: nn.graph @kept
// CHECK:         %pc = nn.pad %x
// CHECK:         %pv = nn.pad %x
// CHECK:         %pu = nn.pad %x
// CHECK:         %pp = nn.pad %x
// CHECK:         %m = nn.max_pool2d %pp
nn.graph @kept(%x: tensor<1x4x4x2xf32>) -> (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>, tensor<1x6x6x2xf32>, tensor<1x4x4x2xf32>) {
  %w = nn.const dense<0.5> : tensor<2x3x3x2xf32>
  %w3 = nn.const dense<0.5> : tensor<2x3x3x3xf32>
  %pc = nn.pad %x {pads = array<i64: 0, 0, 1, 1, 1, 1, 0, 1>} : (tensor<1x4x4x2xf32>) -> tensor<1x6x6x3xf32>
  %yc = nn.conv2d %pc, %w3 {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x6x6x3xf32>, tensor<2x3x3x3xf32>) -> tensor<1x4x4x2xf32>
  %pv = nn.pad %x {pads = array<i64: 0, 0, 1, 1, 1, 1, 0, 0>, value = 1.0 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x6x6x2xf32>
  %yv = nn.conv2d %pv, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x6x6x2xf32>, tensor<2x3x3x2xf32>) -> tensor<1x4x4x2xf32>
  %pu = nn.pad %x {pads = array<i64: 0, 0, 1, 1, 1, 1, 0, 0>} : (tensor<1x4x4x2xf32>) -> tensor<1x6x6x2xf32>
  %yu = nn.conv2d %pu, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x6x6x2xf32>, tensor<2x3x3x2xf32>) -> tensor<1x4x4x2xf32>
  %pp = nn.pad %x {pads = array<i64: 0, 0, 1, 1, 1, 1, 0, 0>} : (tensor<1x4x4x2xf32>) -> tensor<1x6x6x2xf32>
  %m = nn.max_pool2d %pp {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x6x6x2xf32>) -> tensor<1x4x4x2xf32>
  nn.output %yc, %yv, %yu, %pu, %m : tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>, tensor<1x6x6x2xf32>, tensor<1x4x4x2xf32>
}

// -----

// nn-merge-buffers also folds back-to-back transposes and reshapes (the
// canonicalize patterns): the round trip disappears, its buffers with it.
// MERGE-LABEL: nn.graph @chains
// MERGE-NOT:     nn.transpose
// MERGE:         %r = nn.reshape %x {nn.place = #nn.place<"b0">} : (tensor<1x4x4x2xf32>) -> tensor<32xf32>
// MERGE-NEXT:    %s = nn.relu %r {nn.place = #nn.place<"b0">}
// REPORT:      // nn-merge-buffers @chains
// REPORT:      //   rewrite fold-chains: 3
nn.graph @chains(%x: tensor<1x4x4x2xf32>) -> tensor<32xf32> {
  %t = nn.transpose %x {perm = array<i64: 0, 3, 1, 2>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x4x4xf32>
  %u = nn.transpose %t {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x4x4x2xf32>
  %f = nn.reshape %u : (tensor<1x4x4x2xf32>) -> tensor<1x32xf32>
  %r = nn.reshape %f : (tensor<1x32xf32>) -> tensor<32xf32>
  %s = nn.relu %r : (tensor<32xf32>) -> tensor<32xf32>
  nn.output %s : tensor<32xf32>
}
