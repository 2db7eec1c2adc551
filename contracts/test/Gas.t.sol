// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {console} from "./utils/Test.sol";

/// @notice A job's whole life on chain costs the same whatever its step
/// count: one root is committed per job. `forge test -vv --match-contract
/// GasTest --use ./bin/solc` prints the table.
///
/// Figures are execution gas measured with `gasleft()` inside one test
/// transaction: no intrinsic 21 000 or calldata gas, and storage slots and
/// accounts touched by an earlier step are warm. Real transactions cost
/// more; `scripts/gas-anvil.sh` measures those on anvil.
contract GasTest is Fixture {
    uint256 constant LIFE_BUDGET = 400_000;

    struct Life {
        uint256 submit;
        uint256 assign;
        uint256 commit;
        uint256 finalize;
        uint256 total;
    }

    function life(bytes32 jobId, uint64 steps) internal returns (Life memory g) {
        uint32 window = 100;
        uint32 windows = uint32((steps + window - 1) / window);
        uint256 left = gasleft();
        vm.prank(submitter);
        manager.submitJob{value: 10 ether}(jobId, keccak256("spec"), 4_710, RATE);
        g.submit = left - gasleft();
        left = gasleft();
        vm.prank(scheduler);
        manager.assign(jobId, NODE);
        g.assign = left - gasleft();
        left = gasleft();
        vm.prank(operator);
        poc.commit(jobId, keccak256(abi.encode(jobId)), window, windows, steps, 4_710, bytes32("w"), bytes32("m"));
        g.commit = left - gasleft();
        vm.warp(block.timestamp + PERIOD);
        left = gasleft();
        poc.finalize(jobId);
        g.finalize = left - gasleft();
        g.total = g.submit + g.assign + g.commit + g.finalize;
    }

    function pad(uint256 v, uint256 width) internal pure returns (string memory s) {
        s = vm.toString(v);
        while (bytes(s).length < width) {
            s = string.concat(" ", s);
        }
    }

    function row(string memory label, Life memory g) internal view {
        console.log(
            string.concat(
                label,
                " |",
                pad(g.submit, 8),
                " |",
                pad(g.assign, 7),
                " |",
                pad(g.commit, 7),
                " |",
                pad(g.finalize, 9),
                " |",
                pad(g.total, 8)
            )
        );
    }

    function diff(uint256 x, uint256 y) internal pure returns (uint256) {
        return x > y ? x - y : y - x;
    }

    function testJobLifeGasDoesNotGrowWithSteps() public {
        // The first job on a fresh deployment also pays one-time costs
        // (zero-to-non-zero writes of shared counters and balances).
        Life memory cold = life(bytes32(uint256(9) << 128), 1);
        Life memory a = life(bytes32(uint256(1) << 128), 100);
        Life memory b = life(bytes32(uint256(2) << 128), 10_000);
        Life memory c = life(bytes32(uint256(3) << 128), 1_000_000);
        console.log("steps             |  submit | assign | commit | finalize |   total");
        row("first job (1)    ", cold);
        row("100              ", a);
        row("10 000           ", b);
        row("1 000 000        ", c);
        assertTrue(cold.total < LIFE_BUDGET, "first job under 400k gas");
        assertTrue(a.total < LIFE_BUDGET, "under 400k gas");
        // Equal up to the encoding of the numbers themselves (a few gas for
        // non-zero bytes): nothing is stored or hashed per step or window.
        assertTrue(diff(a.total, b.total) <= 100 && diff(b.total, c.total) <= 100, "flat in steps");
        assertTrue(diff(a.total, c.total) <= 100, "flat in steps");
    }
}
