// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ArthaMerkle} from "../src/ArthaMerkle.sol";
import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DatasetRegistry} from "../src/DatasetRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {DealMarket} from "../src/DealMarket.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

interface VmGas {
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
    function roll(uint256 newHeight) external;
}

/// @notice Whole job lives and disputes as real transactions, for
/// `scripts/gas-anvil.sh`: deploys and wires the six contracts, registers a
/// node and three jurors, then
/// 1. runs submit → assign → commit → finalize for jobs of 1 (first job),
///    100, 10 000 and 1 000 000 steps, on a ProofOfCompute with a challenge
///    period of 0 (so `finalize` can follow at once; the period's length
///    does not change any gas figure);
/// 2. runs three disputes — challenge → drawJury → 3 × commitVote →
///    3 × revealVote → resolve — ending VALID, UNAVAILABLE and FRAUD, on a
///    second ProofOfCompute (same code) with a one-day challenge period.
/// The receipts' `gasUsed` (intrinsic and calldata gas, cold storage and
/// accounts included) are the figures.
///
/// The audit seed needs the block after the commitment, and a jury the
/// block after the challenge: a plain transfer (no function, not counted)
/// fills that block on anvil, and `vm.roll` moves the local simulation on.
/// Run with `--skip-simulation` (the on-chain re-simulation would run every
/// transaction in one block).
///
/// Keys are anvil's well-known development keys (accounts 0 to 6).
contract JobLifeGas {
    VmGas internal constant vm = VmGas(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant ADMIN_KEY = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 internal constant OPERATOR_KEY = 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d;
    uint256 internal constant SUBMITTER_KEY = 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a;
    uint256 internal constant CHALLENGER_KEY = 0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e;
    address internal constant ADMIN = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
    bytes32 internal constant NODE = bytes32(uint256(0x4e4f4445) << 128);
    uint128 internal constant PRICE = 0.000001 ether; // per step

    uint256[3] internal jurorKeys = [
        0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6,
        0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a,
        0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba
    ];
    address[3] internal jurorAddrs = [
        0x90F79bf6EB2c4f870365E785982E1f101E93b906,
        0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65,
        0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc
    ];

    AIJobManager internal manager;
    NodeCertRegistry internal registry;

    function run() external {
        vm.startBroadcast(ADMIN_KEY);
        registry = new NodeCertRegistry(ADMIN, 1 ether, 7 days);
        DatasetRegistry datasets = new DatasetRegistry();
        new ModelRegistry(ADMIN, datasets);
        DealMarket market = new DealMarket(ADMIN);
        manager = new AIJobManager(ADMIN, market, registry);
        ProofOfCompute poc =
            new ProofOfCompute(ADMIN, manager, registry, market, 0, 0.1 ether, 0.5 ether, 1 ether, 3, 1 hours);
        ProofOfCompute disputes =
            new ProofOfCompute(ADMIN, manager, registry, market, 1 days, 0.1 ether, 0.5 ether, 1 ether, 3, 1 hours);
        market.grantRole(market.ESCROW(), address(manager));
        market.grantRole(market.SETTLER(), address(poc));
        market.grantRole(market.SETTLER(), address(disputes));
        manager.grantRole(manager.PROVER(), address(poc));
        manager.grantRole(manager.PROVER(), address(disputes));
        manager.grantRole(manager.SCHEDULER(), ADMIN);
        registry.grantRole(registry.SLASHER(), address(poc));
        registry.grantRole(registry.SLASHER(), address(disputes));
        registry.grantRole(registry.ATTESTOR(), ADMIN);
        vm.stopBroadcast();

        vm.startBroadcast(OPERATOR_KEY);
        registry.register{value: 1 ether}(NODE, 8, 81_920, uint64(PRICE), "eu-west", keccak256("mlp"));
        vm.stopBroadcast();
        vm.startBroadcast(ADMIN_KEY);
        registry.certify(NODE);
        vm.stopBroadcast();
        for (uint256 k = 0; k < 3; k++) {
            vm.startBroadcast(jurorKeys[k]);
            disputes.joinJury{value: 1 ether}();
            vm.stopBroadcast();
        }

        uint64[4] memory steps = [uint64(1), 100, 10_000, 1_000_000];
        for (uint256 i = 0; i < steps.length; i++) {
            life(poc, bytes32((i + 1) << 128), steps[i]);
        }
        // The FRAUD dispute last: it slashes the node for good.
        uint8[3] memory verdicts = [disputes.VALID(), disputes.UNAVAILABLE(), disputes.FRAUD()];
        for (uint256 i = 0; i < verdicts.length; i++) {
            dispute(disputes, bytes32((i + 11) << 128), verdicts[i]);
        }
    }

    /// Ends the current block on anvil (a transfer, not counted) and in the
    /// local simulation.
    function nextBlock() internal {
        vm.startBroadcast(ADMIN_KEY);
        payable(ADMIN).transfer(0);
        vm.stopBroadcast();
        vm.roll(block.number + 1);
    }

    function submitAssign(bytes32 jobId) internal {
        vm.startBroadcast(SUBMITTER_KEY);
        manager.submitJob{value: 10 ether}(jobId, keccak256("spec"), 1_000_000, PRICE);
        vm.stopBroadcast();
        vm.startBroadcast(ADMIN_KEY);
        manager.assign(jobId, NODE);
        vm.stopBroadcast();
    }

    function life(ProofOfCompute poc, bytes32 jobId, uint64 steps) internal {
        uint32 window = 100;
        uint32 windows = uint32((steps + window - 1) / window);
        submitAssign(jobId);
        vm.startBroadcast(OPERATOR_KEY);
        poc.commit(jobId, keccak256(abi.encode(jobId)), window, windows, steps, bytes32("w"), bytes32("m"));
        vm.stopBroadcast();
        nextBlock();
        vm.roll(block.number + 1);
        vm.startBroadcast(ADMIN_KEY);
        poc.finalize(jobId);
        vm.stopBroadcast();
    }

    /// A StepRecord (117 bytes) of step `step`, filler from `salt`.
    function rec(uint64 step, bytes32 salt) internal pure returns (bytes memory r) {
        r = new bytes(117);
        r[0] = 0x01;
        for (uint256 i = 0; i < 8; i++) {
            r[1 + i] = bytes1(uint8(step >> (8 * i)));
        }
        for (uint256 i = 9; i < 117; i++) {
            r[i] = keccak256(abi.encode(salt, step, i))[0];
        }
    }

    function dispute(ProofOfCompute poc, bytes32 jobId, uint8 verdict) internal {
        // Three steps in windows of two; the challenge is of step 2.
        bytes memory r1 = rec(1, "honest");
        bytes memory r2 = rec(2, "honest");
        bytes32 w0 = ArthaMerkle.nodeHash(ArthaMerkle.leafHash(r1), ArthaMerkle.leafHash(r2));
        bytes32 w1 = ArthaMerkle.leafHash(rec(3, "honest"));
        submitAssign(jobId);
        vm.startBroadcast(OPERATOR_KEY);
        poc.commit(jobId, ArthaMerkle.nodeHash(w0, w1), 2, 2, 3, bytes32("w"), bytes32("m"));
        vm.stopBroadcast();
        bytes32[] memory wp = new bytes32[](1);
        wp[0] = w1;
        bytes32[] memory sp = new bytes32[](1);
        sp[0] = ArthaMerkle.leafHash(r1);
        vm.startBroadcast(CHALLENGER_KEY);
        uint256 id =
            poc.challenge{value: 0.1 ether}(jobId, ProofOfCompute.StepClaim(0, w0, wp, 1, r2, sp, rec(2, "replayed")));
        vm.stopBroadcast();
        nextBlock();
        vm.roll(block.number + 1);
        vm.startBroadcast(ADMIN_KEY);
        poc.drawJury(id);
        vm.stopBroadcast();
        for (uint256 k = 0; k < 3; k++) {
            vm.startBroadcast(jurorKeys[k]);
            poc.commitVote(id, keccak256(abi.encode(id, jurorAddrs[k], verdict, bytes32(k))));
            vm.stopBroadcast();
        }
        for (uint256 k = 0; k < 3; k++) {
            vm.startBroadcast(jurorKeys[k]);
            poc.revealVote(id, verdict, bytes32(k));
            vm.stopBroadcast();
        }
        vm.startBroadcast(ADMIN_KEY);
        poc.resolve(id);
        vm.stopBroadcast();
    }
}
