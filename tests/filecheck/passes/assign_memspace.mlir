// RUN: nnopt-opt %s -p 'nn-bufferize,nn-assign-memspace{target="%S/Inputs/tiny-board.toml" weights=xflash},nn-plan-arena' | filecheck %s
// RUN: nnopt-opt %s -p 'nn-bufferize,nn-assign-memspace{target="%S/Inputs/tiny-board.toml" weights=xflash overlays=false}' | filecheck %s --check-prefix=NOOV
// RUN: nnopt-opt %s -p 'nn-assign-memspace{target="%S/Inputs/tiny-board.toml" pin="y:sram","w2:tcm"}' | filecheck %s --check-prefix=PIN
// RUN: nnopt-opt %s -p 'nn-assign-memspace{target=host}' | filecheck %s --check-prefix=HOST
// RUN: not nnopt-opt %s -p 'nn-assign-memspace{target="%S/Inputs/tiny-board.toml" pin="y:xflash"}' 2>&1 | filecheck %s --check-prefix=NV
// RUN: not nnopt-opt %s -p 'nn-assign-memspace{target="%S/Inputs/tiny-board.toml" pin="nothing:tcm"}' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not nnopt-opt %s -p 'nn-assign-memspace{target="%S/Inputs/tiny-board.toml" pin="y:dram"}' 2>&1 | filecheck %s --check-prefix=SPACE
// RUN: not nnopt-opt %s -p 'nn-assign-memspace' 2>&1 | filecheck %s --check-prefix=NOTARGET

// Two 1x1 convolutions: 1 KiB activations, 1 KiB and 4 KiB of weights read once per pair of pixels.

// Weights live in the slow flash; each convolution gets an overlay copy of its weights into fast
// memory. The TCM is full while the first convolution runs (x and y take its 2 KiB), so the first
// copy goes to the SRAM and the second one lands in the TCM once x is dead, right before its use.
// CHECK-LABEL: nn.graph @g
// CHECK-SAME: nn.buffers = {b0 = #nn.buffer<size = 1024, align = 16, kind = input, space = tcm, offset =
// CHECK-SAME: b1 = #nn.buffer<size = 1024, align = 16, kind = activation, space = tcm, offset =
// CHECK-SAME: b2 = #nn.buffer<size = 4096, align = 16, kind = output, space = sram, offset = 0>
// CHECK-SAME: ov0 = #nn.buffer<size = 64, align = 16, kind = overlay, space = sram, offset =
// CHECK-SAME: ov1 = #nn.buffer<size = 256, align = 16, kind = overlay, space = tcm, offset =
// CHECK-SAME: nn.target = "{{.*}}tiny-board.toml"
// CHECK-SAME: nn.arenas = {sram = 4096 : i64, tcm = 2048 : i64}
// CHECK-NEXT: %w1 = nn.const {{.*}} {nn.space = "xflash"}
// CHECK-NEXT: %w1_sram = nn.copy %w1 {nn.place = #nn.place<"ov0">}
// CHECK-NEXT: %y = nn.conv2d %x, %w1_sram {nn.place = #nn.place<"b1">
// CHECK-NEXT: %w2 = nn.const {{.*}} {nn.space = "xflash"}
// CHECK-NEXT: %w2_tcm = nn.copy %w2 {nn.place = #nn.place<"ov1">}
// CHECK-NEXT: %z = nn.conv2d %y, %w2_tcm {nn.place = #nn.place<"b2">

// NOOV-NOT: nn.copy
// NOOV: nn.space = "xflash"

// PIN: b1 = #nn.buffer<size = 1024, align = 16, kind = activation, space = sram>
// PIN: %w2 = nn.const {{.*}} {nn.space = "tcm"}

// HOST: nn.buffers = {b0 = #nn.buffer<size = 1024, align = 16, kind = input, space = ram>
// HOST: nn.space = "ram"

// NV: error: pin 'y:xflash': 'y' is written at run time and 'xflash' is read-only
// UNKNOWN: error: pin 'nothing:tcm': no value, constant or buffer called 'nothing'
// SPACE: error: target 'tiny-board' has no memory 'dram' (memories: tcm, sram, xflash)
// NOTARGET: error: nn-assign-memspace needs a target

nn.graph @g(%x: tensor<1x8x8x4xf32>) -> tensor<1x8x8x16xf32> {
  %w1 = nn.const dense<0.5> : tensor<4x1x1x4xf32>
  %y = nn.conv2d %x, %w1 {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x8x8x4xf32>, tensor<4x1x1x4xf32>) -> tensor<1x8x8x4xf32>
  %w2 = nn.const dense<0.25> : tensor<16x1x1x4xf32>
  %z = nn.conv2d %y, %w2 {strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x8x8x4xf32>, tensor<16x1x1x4xf32>) -> tensor<1x8x8x16xf32>
  nn.output %z : tensor<1x8x8x16xf32>
}
