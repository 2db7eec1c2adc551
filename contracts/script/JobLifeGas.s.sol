// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DatasetRegistry} from "../src/DatasetRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {DealMarket} from "../src/DealMarket.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

interface VmGas {
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
}

/// @notice Whole job lives as real transactions, for `scripts/gas-anvil.sh`:
/// deploys and wires the six contracts, registers a node, then runs
/// submit → assign → commit → finalize for jobs of 1 (first job), 100,
/// 10 000 and 1 000 000 steps. The receipts' `gasUsed` (intrinsic and
/// calldata gas, cold storage and accounts included) are the figures.
/// The challenge period is 0 so `finalize` can follow `commit` at once; the
/// period's length does not change any gas figure.
///
/// Keys are anvil's well-known development keys (accounts 0, 1, 2).
contract JobLifeGas {
    VmGas internal constant vm = VmGas(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant ADMIN_KEY = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 internal constant OPERATOR_KEY = 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d;
    uint256 internal constant SUBMITTER_KEY = 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a;
    address internal constant ADMIN = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
    bytes32 internal constant NODE = bytes32(uint256(0x4e4f4445) << 128);
    uint128 internal constant RATE = 0.001 ether;

    function run() external {
        vm.startBroadcast(ADMIN_KEY);
        NodeCertRegistry registry = new NodeCertRegistry(ADMIN, 1 ether, 7 days);
        DatasetRegistry datasets = new DatasetRegistry();
        new ModelRegistry(ADMIN, datasets);
        DealMarket market = new DealMarket(ADMIN);
        AIJobManager manager = new AIJobManager(ADMIN, market, registry);
        ProofOfCompute poc = new ProofOfCompute(ADMIN, manager, registry, market, 0, 0.1 ether, 0.5 ether);
        market.grantRole(market.ESCROW(), address(manager));
        market.grantRole(market.SETTLER(), address(poc));
        manager.grantRole(manager.PROVER(), address(poc));
        manager.grantRole(manager.SCHEDULER(), ADMIN);
        registry.grantRole(registry.SLASHER(), address(poc));
        registry.grantRole(registry.ATTESTOR(), ADMIN);
        vm.stopBroadcast();

        vm.startBroadcast(OPERATOR_KEY);
        registry.register{value: 1 ether}(NODE, 8, 81_920, uint64(RATE), "eu-west", keccak256("mlp"));
        vm.stopBroadcast();
        vm.startBroadcast(ADMIN_KEY);
        registry.certify(NODE);
        vm.stopBroadcast();

        uint64[4] memory steps = [uint64(1), 100, 10_000, 1_000_000];
        for (uint256 i = 0; i < steps.length; i++) {
            life(manager, poc, bytes32((i + 1) << 128), steps[i]);
        }
    }

    function life(AIJobManager manager, ProofOfCompute poc, bytes32 jobId, uint64 steps) internal {
        uint32 window = 100;
        uint32 windows = uint32((steps + window - 1) / window);
        vm.startBroadcast(SUBMITTER_KEY);
        manager.submitJob{value: 10 ether}(jobId, keccak256("spec"), 4_710, RATE);
        vm.stopBroadcast();
        vm.startBroadcast(ADMIN_KEY);
        manager.assign(jobId, NODE);
        vm.stopBroadcast();
        vm.startBroadcast(OPERATOR_KEY);
        poc.commit(jobId, keccak256(abi.encode(jobId)), window, windows, steps, 4_710, bytes32("w"), bytes32("m"));
        vm.stopBroadcast();
        vm.startBroadcast(ADMIN_KEY);
        poc.finalize(jobId);
        vm.stopBroadcast();
    }
}
