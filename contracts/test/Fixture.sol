// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";
import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DatasetRegistry} from "../src/DatasetRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {DealMarket} from "../src/DealMarket.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

/// @notice All six contracts deployed and wired as script/Deploy.s.sol does,
/// with one certified node; helpers for juries (no juror joins by default).
abstract contract Fixture is Test {
    event log_named_uint(string key, uint256 val);

    NodeCertRegistry internal registry;
    DatasetRegistry internal datasets;
    ModelRegistry internal models;
    DealMarket internal market;
    AIJobManager internal manager;
    ProofOfCompute internal poc;

    address internal admin = address(this);
    address internal scheduler = address(0x5c);
    address internal attestor = address(0xa7);
    address internal operator = address(0x0b);
    address internal submitter = address(0x5b);
    address internal challenger = address(0xc4);
    address internal stranger = address(0x99);

    bytes32 internal constant NODE = bytes32(uint256(0x4e4f4445) << 128);
    uint256 internal constant MIN_STAKE = 1 ether;
    uint64 internal constant PERIOD = 1 hours;
    uint256 internal constant MIN_BOND = 0.1 ether;
    uint256 internal constant SLASH = 0.5 ether;
    uint128 internal constant PRICE = 0.001 ether; // per step
    uint256 internal constant JUROR_STAKE = 1 ether;
    uint32 internal constant JURY = 3;
    uint64 internal constant VOTE = 1 hours;
    bytes32 internal constant SPEC = keccak256("spec");
    uint8 internal constant FRAUD = 1;
    uint8 internal constant VALID = 2;
    uint8 internal constant UNAVAILABLE = 3;

    /// Pool members joined by `joinJurors`, in join order.
    address[] internal pool;

    function setUp() public virtual {
        registry = new NodeCertRegistry(admin, MIN_STAKE, 7 days);
        datasets = new DatasetRegistry();
        models = new ModelRegistry(admin, datasets);
        market = new DealMarket(admin);
        manager = new AIJobManager(admin, market, registry);
        poc = new ProofOfCompute(admin, manager, registry, market, PERIOD, MIN_BOND, SLASH, JUROR_STAKE, JURY, VOTE);
        market.grantRole(market.ESCROW(), address(manager));
        market.grantRole(market.SETTLER(), address(poc));
        manager.grantRole(manager.SCHEDULER(), scheduler);
        manager.grantRole(manager.PROVER(), address(poc));
        registry.grantRole(registry.ATTESTOR(), attestor);
        registry.grantRole(registry.SLASHER(), address(poc));
        models.grantRole(models.REGISTRAR(), admin);

        vm.deal(operator, 10 ether);
        vm.deal(submitter, 100_000 ether);
        vm.deal(challenger, 10 ether);
        vm.prank(operator);
        registry.register{value: MIN_STAKE}(NODE, 8, 81_920, uint64(PRICE), "eu-west", keccak256("mlp"));
        vm.prank(attestor);
        registry.certify(NODE);
    }

    /// A StepRecord encoding (artha_core::proof): tag, step u64 LE, then
    /// filler derived from `salt` for epoch, loss and the three digests.
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

    function submit(bytes32 jobId, uint64 maxSteps, uint256 budget) internal {
        vm.prank(submitter);
        manager.submitJob{value: budget}(jobId, SPEC, maxSteps, PRICE);
    }

    function submitAndAssign(bytes32 jobId, uint64 maxSteps, uint256 budget) internal {
        submit(jobId, maxSteps, budget);
        vm.prank(scheduler);
        manager.assign(jobId, NODE);
    }

    /// Bottom-up siblings proving `nodes[index]` (the ArthaMerkle proof shape).
    function prove(bytes32[] memory nodes, uint256 index) internal pure returns (bytes32[] memory siblings) {
        uint256 n = nodes.length;
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            level[i] = nodes[i];
        }
        bytes32[] memory buf = new bytes32[](256);
        uint256 used = 0;
        while (n > 1) {
            if (!(index == n - 1 && n % 2 == 1)) buf[used++] = level[index ^ 1];
            uint256 next = 0;
            for (uint256 i = 0; i + 1 < n; i += 2) {
                level[next++] = ArthaMerkle.nodeHash(level[i], level[i + 1]);
            }
            if (n % 2 == 1) level[next++] = level[n - 1];
            n = next;
            index >>= 1;
        }
        siblings = new bytes32[](used);
        for (uint256 i = 0; i < used; i++) {
            siblings[i] = buf[i];
        }
    }

    /// Three steps in windows of two: w0 = node(l1, l2), w1 = l3, root = node(w0, w1).
    function threeStepTree() internal pure returns (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) {
        recs = new bytes[](3);
        for (uint64 s = 1; s <= 3; s++) {
            recs[s - 1] = rec(s, "honest");
        }
        w0 = ArthaMerkle.nodeHash(ArthaMerkle.leafHash(recs[0]), ArthaMerkle.leafHash(recs[1]));
        w1 = ArthaMerkle.leafHash(recs[2]);
        root = ArthaMerkle.nodeHash(w0, w1);
    }

    // ------------------------------------------------------------ juries

    /// `n` more jurors join the pool with `JUROR_STAKE` each.
    function joinJurors(uint256 n) internal {
        for (uint256 i = 0; i < n; i++) {
            address a = address(uint160(0x1000 + pool.length));
            vm.deal(a, 10 ether);
            vm.prank(a);
            poc.joinJury{value: JUROR_STAKE}();
            pool.push(a);
        }
    }

    function saltOf(address juror) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", juror));
    }

    /// Moves past the draw block and draws the jury.
    function draw(uint256 id) internal returns (address[] memory) {
        vm.roll(block.number + 2);
        return poc.drawJury(id);
    }

    function commitVoteAs(uint256 id, address juror, uint8 vote) internal {
        vm.prank(juror);
        poc.commitVote(id, keccak256(abi.encode(id, juror, vote, saltOf(juror))));
    }

    function revealVoteAs(uint256 id, address juror, uint8 vote) internal {
        vm.prank(juror);
        poc.revealVote(id, vote, saltOf(juror));
    }

    /// Draws the jury; juror i votes `votes[i]` (0: commits nothing; 4:
    /// commits VALID but never reveals), then anyone resolves.
    function judge(uint256 id, uint8[3] memory votes) internal returns (address[] memory jury) {
        jury = draw(id);
        bool allCommit = true;
        bool allReveal = true;
        for (uint256 i = 0; i < 3; i++) {
            if (votes[i] == 0) allCommit = false;
            if (votes[i] == 0 || votes[i] == 4) allReveal = false;
            if (votes[i] != 0) commitVoteAs(id, jury[i], votes[i] == 4 ? VALID : votes[i]);
        }
        (uint256 commitEnd, uint256 revealEnd) = poc.deadlinesOf(id);
        if (!allCommit) vm.warp(commitEnd);
        for (uint256 i = 0; i < 3; i++) {
            if (votes[i] != 0 && votes[i] != 4) revealVoteAs(id, jury[i], votes[i]);
        }
        if (!allReveal) vm.warp(revealEnd);
        vm.prank(stranger);
        poc.resolve(id);
    }

    function unanimous(uint8 v) internal pure returns (uint8[3] memory votes) {
        votes = [v, v, v];
    }

    /// The jury `drawJury(id)` picks from `pool` (join order, nobody left),
    /// re-implemented: seed = keccak(blockhash(drawBlock), id); for i = 0, 1,
    /// …: pool[keccak(seed, i) % size], skipping the challenger, the
    /// operator and repeats.
    function expectedJury(uint256 id, uint256 drawBlock) internal view returns (address[] memory jury) {
        bytes32 seed = keccak256(abi.encode(blockhash(drawBlock), id));
        ProofOfCompute.Challenge memory c = poc.getChallenge(id);
        address op = registry.operatorOf(manager.getJob(c.jobId).nodeId);
        jury = new address[](JURY);
        uint256 found = 0;
        for (uint256 i = 0; found < JURY; i++) {
            address a = pool[uint256(keccak256(abi.encode(seed, i))) % pool.length];
            bool skip = a == c.challenger || a == op;
            for (uint256 k = 0; k < found; k++) {
                if (jury[k] == a) skip = true;
            }
            if (!skip) jury[found++] = a;
        }
    }
}
